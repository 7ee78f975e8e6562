"""Blind T60 estimation (avse.dsp.t60_blind): the ML decay fit, synthetic reverberant
signals of known T60, monotonicity, bad input and signals without free decays."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from avse.dsp.t60_blind import estimate_t60, ml_decay_t60
from avse.errors import InputError
from testutils import speechlike

FS = 16000


def bursts(seconds: float, seed: int) -> np.ndarray:
    """White-noise bursts of 0.1-0.3 s with abrupt ends, 0.2-0.45 s pauses between."""
    rng = np.random.default_rng(seed)
    x, i = np.zeros(int(seconds * FS)), int(0.05 * FS)
    while i < len(x):
        n = int(rng.uniform(0.1, 0.3) * FS)
        x[i:i + n] = rng.standard_normal(min(n, len(x) - i))
        i += n + int(rng.uniform(0.2, 0.45) * FS)
    return x


def reverberate(x: np.ndarray, t60: float, seed: int = 0) -> np.ndarray:
    """``x`` through a direct path plus exponentially decaying Gaussian noise of ``t60`` s."""
    rng = np.random.default_rng(seed + 100)
    n = int(1.2 * t60 * FS)
    h = rng.standard_normal(n) * 10.0 ** (-3.0 * np.arange(n) / (t60 * FS))
    h[0] = 3.0
    return np.convolve(x, h)[:len(x)]


@pytest.mark.parametrize("t60", [0.3, 0.6, 0.9])
def test_ml_fit_recovers_the_decay_rate_with_and_without_a_noise_floor(t60):
    fs, b = 8000, 32  # 4 ms blocks
    rng = np.random.default_rng(int(t60 * 10))
    grid = np.exp(np.linspace(np.log(0.05), np.log(3.0), 60))
    n = int(0.3 * fs)  # 300 ms decays
    env = 10.0 ** (-3.0 * np.arange(n) / (t60 * fs))
    clean, noisy = [], []
    for _ in range(20):
        y = rng.standard_normal(n) * env
        clean.append(np.mean(y.reshape(-1, b) ** 2, axis=1))
        v = y + 10 ** (-15 / 20) * rng.standard_normal(n)  # floor 15 dB below the start
        noisy.append(np.mean(v.reshape(-1, b) ** 2, axis=1))
    t_clean = ml_decay_t60(clean, 1e-30, b / fs, grid, first=12)
    t_noisy = ml_decay_t60(noisy, 10 ** (-15 / 10), b / fs, grid, first=12)
    assert np.all(np.isfinite(t_clean)) and np.all(np.isfinite(t_noisy))
    assert abs(np.median(t_clean) / t60 - 1) < 0.05
    assert abs(np.median(t_noisy) / t60 - 1) < 0.1
    # ignoring the floor makes the fit far too slow: the noise model is what copes with it
    t_ignored = ml_decay_t60(noisy, 1e-30, b / fs, grid, first=12)
    assert np.nanmedian(t_ignored) > 1.3 * np.median(t_noisy)


@pytest.mark.parametrize("t60", [0.3, 0.6, 0.9])
def test_reverberant_bursts_are_estimated_within_30_percent(t60):
    est = estimate_t60(reverberate(bursts(3.5, seed=0), t60), FS)
    assert np.isfinite(est) and abs(est / t60 - 1) < 0.3, est


def test_longer_t60_gives_a_larger_estimate_and_noise_at_30_db_changes_little():
    x = speechlike(3.0, seed=0).astype(np.float64)
    est, est_noisy = [], []
    for t60 in (0.3, 0.6, 0.9):
        y = reverberate(x, t60)
        est.append(estimate_t60(y, FS))
        noise = np.random.default_rng(1).standard_normal(len(y)) * 0.03 * np.std(y)
        est_noisy.append(estimate_t60(y + noise, FS))
    assert est[0] < est[1] < est[2], est
    assert est_noisy[0] < est_noisy[1] < est_noisy[2], est_noisy
    assert np.allclose(est_noisy, est, rtol=0.2), (est, est_noisy)


def test_scale_invariant_and_accepts_integer_samples():
    y = reverberate(bursts(2.0, seed=3), 0.5)
    a = estimate_t60(y, FS)
    assert estimate_t60(1000.0 * y, FS) == pytest.approx(a, rel=1e-9)
    y16 = np.round(y / np.max(np.abs(y)) * 20000).astype(np.int16)
    assert estimate_t60(y16, FS) == pytest.approx(a, rel=0.05)


def test_constant_amplitude_signal_has_no_free_decay_and_gives_nan(caplog):
    t = np.arange(3 * FS) / FS
    x = sum(np.sin(2 * np.pi * f * t + f) for f in (200, 450, 900, 1700, 3100))
    with caplog.at_level(logging.WARNING, logger="avse.dsp.t60_blind"):
        assert np.isnan(estimate_t60(x, FS))
        assert np.isnan(estimate_t60(np.zeros(FS), FS))
    assert len(caplog.records) == 2 and "returning nan" in caplog.records[0].getMessage()


@pytest.mark.parametrize("x, fs, opts, match", [
    (np.zeros((2, FS)), FS, {}, "1-D"),
    (np.zeros(FS, dtype=complex), FS, {}, "real 1-D"),
    (np.ones(FS), 500, {}, ">= 1000 Hz"),
    (np.ones(FS), float("nan"), {}, ">= 1000 Hz"),
    (np.ones(FS // 4), FS, {}, "shorter than"),
    (np.r_[np.ones(FS), np.nan], FS, {}, "non-finite|NaN"),
    (np.ones(FS), FS, {"quantil": 0.5}, "unknown option"),
])
def test_bad_input_raises_input_error(x, fs, opts, match):
    with pytest.raises(InputError, match=match):
        estimate_t60(x, fs, **opts)
