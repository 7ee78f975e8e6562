import numpy as np
import pytest

from avse.io.audio import resample
from avse.metrics import compute_metrics
from avse.metrics.pesq_metric import nb_mos_lqo_to_raw, nb_raw_to_mos_lqo, pesq_nb, pesq_nb_raw, pesq_wb
from testutils import speechlike


def noisy(x, snr_db, seed=0):
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(x.size)
    n *= np.sqrt(np.mean(x ** 2) / np.mean(n ** 2) / 10 ** (snr_db / 10))
    return x + n


@pytest.fixture(scope="module")
def speech():
    return speechlike(2.5, seed=1, f0=125.0).astype(np.float64)


def test_identical_is_near_max(speech):
    m = compute_metrics(speech, speech, 16000, ["pesq_wb", "pesq_nb", "pesq_nb_raw"])
    assert m["pesq_wb"] == pytest.approx(4.64, abs=0.01)
    assert m["pesq_nb"] == pytest.approx(4.55, abs=0.01)
    assert m["pesq_nb_raw"] == pytest.approx(nb_mos_lqo_to_raw(m["pesq_nb"]), abs=1e-12)
    assert m["pesq_nb_raw"] == pytest.approx(4.5, abs=1e-4)  # the P.862 ceiling


def test_monotone_with_snr(speech):
    wb = [pesq_wb(speech, noisy(speech, s, seed=7), 16000) for s in (0, 10, 25)]
    nb = [pesq_nb(speech, noisy(speech, s, seed=7), 16000) for s in (0, 10, 25)]
    assert wb[0] < wb[1] < wb[2] < 4.6
    assert nb[0] < nb[1] < nb[2] < 4.5


def test_raw_mapping_round_trip():
    xs = np.linspace(-0.5, 4.5, 201)
    for x in xs:
        y = nb_raw_to_mos_lqo(float(x))
        assert 0.999 < y < 4.999
        assert nb_mos_lqo_to_raw(y) == pytest.approx(float(x), abs=1e-10)
    ys = [nb_raw_to_mos_lqo(float(x)) for x in xs]
    assert all(a < b for a, b in zip(ys, ys[1:]))
    # P.862.1 anchor: raw 4.5 -> MOS-LQO about 4.55 (the nb ceiling)
    assert nb_raw_to_mos_lqo(4.5) == pytest.approx(4.549, abs=0.002)
    for bad in (0.999, 0.5, 5.0, float("nan")):
        assert np.isnan(nb_mos_lqo_to_raw(bad))


def test_raw_metric_is_inverse_of_nb(speech):
    y = noisy(speech, 5, seed=3)
    assert pesq_nb_raw(speech, y, 16000) == pytest.approx(nb_mos_lqo_to_raw(pesq_nb(speech, y, 16000)),
                                                          abs=1e-12)


def test_undefined_inputs_give_nan(speech):
    assert np.isnan(pesq_wb(speech, np.zeros_like(speech), 16000))
    assert np.isnan(pesq_nb(np.zeros_like(speech), speech, 16000))
    assert np.isnan(pesq_wb(speech[:2000], speech[:2000], 16000))  # < 0.25 s
    # a burst of 1000 samples in 2 s of silence: the C code finds "no utterances"
    burst = np.r_[np.zeros(31000), np.random.default_rng(0).standard_normal(1000)]
    assert np.isnan(pesq_wb(burst, burst, 16000))
    assert np.isnan(pesq_nb_raw(burst, burst, 16000))


def test_other_rates(speech):
    x8 = resample(speech, 16000, 8000).astype(np.float64)
    assert pesq_nb(x8, x8, 8000) == pytest.approx(4.55, abs=0.01)  # nb runs at 8 kHz
    x48 = resample(speech, 16000, 48000).astype(np.float64)
    assert pesq_wb(x48, x48, 48000) == pytest.approx(4.64, abs=0.01)  # resampled to 16 kHz
