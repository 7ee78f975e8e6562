import logging

import numpy as np
import pytest

from avse.errors import InputError
from avse.metrics import DEFAULT_METRICS, METRICS, align, compute_metrics
from avse.metrics.sisdr import MAX_DB, sdr, si_sdr, si_sdr_improvement
from testutils import speechlike


def add_noise(x, snr_db, seed=0):
    """x + white noise at exactly ``snr_db`` (energy ratio of the zero-mean signals)."""
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(x.size)
    n -= n.mean()
    xz = x - x.mean()
    n *= np.sqrt(np.sum(xz ** 2) / np.sum(n ** 2) / 10 ** (snr_db / 10))
    return x + n


@pytest.fixture(scope="module")
def speech():
    return speechlike(2.0, seed=3).astype(np.float64)


def test_registry_has_required_metrics():
    for m in DEFAULT_METRICS + ("stoi", "sdr"):
        assert m in METRICS


def test_scaled_copy_is_capped(speech):
    assert si_sdr(speech, 0.3 * speech) == MAX_DB
    assert si_sdr(speech, -2.0 * speech) == MAX_DB  # a sign flip is a scale too
    assert np.isfinite(si_sdr(speech, speech))


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 25.0])
def test_white_noise_at_known_snr(speech, snr):
    y = add_noise(speech, snr, seed=int(snr) + 10)
    assert si_sdr(speech, y) == pytest.approx(snr, abs=0.1)
    assert sdr(speech, y) == pytest.approx(snr, abs=0.1)


def test_scale_and_offset_invariance(speech):
    y = add_noise(speech, 5.0)
    base = si_sdr(speech, y)
    assert si_sdr(speech, 7.5 * y) == pytest.approx(base, abs=1e-9)
    assert si_sdr(0.1 * speech, y) == pytest.approx(base, abs=1e-9)
    assert si_sdr(speech, y + 0.2) == pytest.approx(base, abs=1e-9)  # zero-mean
    # plain SDR is not scale invariant
    assert sdr(speech, 3.0 * y) < base - 5.0


def test_toy_vector_closed_form():
    ref = np.array([3.0, -0.5, 2.0, 7.0])
    est = np.array([2.5, 0.0, 2.0, 8.0])
    assert si_sdr(ref, est) == pytest.approx(15.091756, abs=1e-5)
    assert si_sdr(ref, est, zero_mean=False) == pytest.approx(18.402992, abs=1e-5)
    assert sdr(ref, est) == pytest.approx(16.180481, abs=1e-5)


def test_ranking_and_improvement(speech):
    noisy = add_noise(speech, 0.0, seed=1)
    better = add_noise(speech, 10.0, seed=2)
    assert si_sdr(speech, better) > si_sdr(speech, noisy)
    assert si_sdr_improvement(speech, better, noisy) == pytest.approx(10.0, abs=0.2)


def test_silent_inputs_give_nan(speech):
    assert np.isnan(si_sdr(np.zeros(100), np.ones(100)))
    assert np.isnan(si_sdr(speech, np.zeros_like(speech)))
    assert np.isnan(sdr(np.zeros(100), np.ones(100)))


def test_lengths_truncated_with_warning(speech, caplog):
    y = add_noise(speech, 10.0)
    with caplog.at_level(logging.WARNING):
        r, e = align(speech, y[:-5], 16000, name="uttX")
    assert r.size == e.size == speech.size - 5
    assert not caplog.records  # within the tolerance: silent
    with caplog.at_level(logging.WARNING):
        r, e = align(speech, y[:-4000], 16000, name="uttX")
    assert r.size == e.size == speech.size - 4000
    assert any("uttX" in rec.getMessage() and "lengths differ" in rec.getMessage() for rec in caplog.records)
    assert si_sdr(speech, y[:-4000]) == pytest.approx(si_sdr(speech[:-4000], y[:-4000]))


def test_bad_shapes_and_names(speech):
    with pytest.raises(InputError, match="1-D"):
        si_sdr(np.zeros((2, 10)), np.zeros((2, 10)))
    with pytest.raises(InputError, match="NaN"):
        si_sdr(speech, np.full_like(speech, np.nan))
    with pytest.raises(InputError, match="unknown metric 'nope'"):
        compute_metrics(speech, speech, 16000, ["si_sdr", "nope"])
