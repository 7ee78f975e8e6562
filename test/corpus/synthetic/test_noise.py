"""avse.corpus.synthetic.noise: procedural noise types."""
import numpy as np
import pytest
from scipy.signal import welch

from avse.corpus.synthetic.noise import NOISE_DESCRIPTIONS, NOISES, generate_noise
from avse.errors import InputError
from testutils import speechlike

FS = 16000
POOL = [speechlike(1.2 + 0.2 * i, seed=i, f0=100 + 15 * i) for i in range(4)]
REQUIRED = {"white", "pink", "brown", "babble", "cafe", "traffic", "engine", "music"}


def _gen(name, seed, seconds=3.0, fs=FS):
    return generate_noise(name, seconds, fs, np.random.default_rng(seed), speech_pool=POOL)


def _slope(x, fs=FS, lo=50.0, hi=4000.0):
    """Log-log slope of the power spectrum (1 for 1/f)."""
    f, p = welch(x.astype(np.float64), fs, nperseg=4096)
    sel = (f >= lo) & (f <= hi)
    return np.polyfit(np.log10(f[sel]), np.log10(p[sel]), 1)[0]


def _level_std(x, frame=1600):
    fr = x[:len(x) // frame * frame].astype(np.float64).reshape(-1, frame)
    return float(np.std(10 * np.log10(np.mean(fr ** 2, axis=1) + 1e-12)))


def test_registry_has_required_types_and_descriptions():
    assert REQUIRED <= set(NOISES.names())
    for name in NOISES.names():
        desc = NOISE_DESCRIPTIONS[name]
        assert isinstance(desc, str) and len(desc) > 20 and desc.endswith(".")


@pytest.mark.parametrize("name", NOISES.names())
def test_noise_is_finite_unit_rms_and_deterministic(name):
    x = _gen(name, 7)
    assert x.dtype == np.float32 and x.shape == (3 * FS,)
    assert np.all(np.isfinite(x))
    assert abs(np.sqrt(np.mean(x.astype(np.float64) ** 2)) - 1.0) < 1e-3
    np.testing.assert_array_equal(x, _gen(name, 7))
    assert not np.array_equal(x, _gen(name, 8))
    # works at another rate and for a very short length
    y = generate_noise(name, 0.25, 8000, np.random.default_rng(0), speech_pool=POOL)
    assert y.shape == (2000,) and np.all(np.isfinite(y))


@pytest.mark.parametrize("name,expect,tol", [("white", 0.0, 0.1), ("pink", -1.0, 0.15), ("brown", -2.0, 0.2)])
def test_colored_noise_slopes(name, expect, tol):
    for seed in range(3):
        assert abs(_slope(_gen(name, seed, 4.0)) - expect) < tol


def test_stationary_and_non_stationary_levels():
    for seed in range(3):
        assert _level_std(_gen("white", seed)) < 0.3
        for name in ("babble", "cafe", "music", "traffic", "wind"):
            assert _level_std(_gen(name, seed)) > 1.2, name


def test_engine_and_traffic_are_low_frequency_weighted():
    for name in ("engine", "traffic"):
        f, p = welch(_gen(name, 1, 4.0).astype(np.float64), FS, nperseg=4096)
        assert p[f < 1000].sum() > 0.5 * p.sum(), name


def test_babble_like_need_speech_pool():
    for name in ("babble", "cafe"):
        with pytest.raises(InputError, match="speech_pool"):
            generate_noise(name, 1.0, FS, np.random.default_rng(0))
        with pytest.raises(InputError, match="speech_pool"):
            generate_noise(name, 1.0, FS, np.random.default_rng(0), speech_pool=[])
    # the pool is resampled when given at another rate
    x = generate_noise("babble", 1.0, 8000, np.random.default_rng(0), speech_pool=POOL, speech_fs=16000)
    assert x.shape == (8000,)


def test_generate_noise_errors():
    with pytest.raises(InputError, match="unknown noise 'nope'"):
        generate_noise("nope", 1.0, FS, np.random.default_rng(0))
    with pytest.raises(InputError, match="at least one sample"):
        generate_noise("white", 0.0, FS, np.random.default_rng(0))
