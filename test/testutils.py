"""Helpers for tests (importable as ``testutils``; pytest.ini puts test/ on sys.path)."""
import os

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def speechlike(seconds: float = 1.0, fs: int = 16000, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A harmonic, amplitude-modulated tone with syllable-rate gaps (float32, peak 0.5)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f) / fs
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    x = x * env + 0.003 * rng.standard_normal(t.size)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)
