import numpy as np
import pytest

from avse.metrics import compute_metrics
from avse.metrics.stoi_metric import estoi, stoi
from testutils import speechlike


def noisy(x, snr_db, seed=0):
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(x.size)
    n *= np.sqrt(np.mean(x ** 2) / np.mean(n ** 2) / 10 ** (snr_db / 10))
    return x + n


@pytest.fixture(scope="module")
def speech():
    return speechlike(2.5, seed=4, f0=150.0).astype(np.float64)


def test_identical_is_one(speech):
    m = compute_metrics(speech, speech, 16000, ["estoi", "stoi"])
    assert m["estoi"] == pytest.approx(1.0, abs=1e-6)
    assert m["stoi"] == pytest.approx(1.0, abs=1e-6)


def test_decreasing_with_noise(speech):
    vals = [estoi(speech, noisy(speech, s, seed=5), 16000) for s in (20, 5, -5)]
    assert 1.0 > vals[0] > vals[1] > vals[2]
    s = [stoi(speech, noisy(speech, s, seed=5), 16000) for s in (20, -5)]
    assert s[0] > s[1]
    # ESTOI is the stricter measure on stationary noise: well below STOI here
    assert vals[2] < s[1] - 0.1


def test_undefined_inputs_give_nan(speech):
    assert np.isnan(estoi(speech, np.zeros_like(speech), 16000))
    assert np.isnan(estoi(speech[:3000], speech[:3000], 16000))  # < 30 frames


def test_other_rate(speech):
    from avse.io.audio import resample

    x = resample(speech, 16000, 8000).astype(np.float64)
    assert estoi(x, x, 8000) == pytest.approx(1.0, abs=1e-6)
    assert estoi(x, noisy(x, 0, seed=1), 8000) < 0.9
