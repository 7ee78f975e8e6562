"""STOI and extended STOI through ``pystoi`` (which resamples to 10 kHz itself).

``nan`` instead of pystoi's placeholder 1e-5 when fewer than 30 frames (384 ms) remain
after pystoi removes the silent frames, and for a silent reference or estimate.
"""
import logging
import warnings

import numpy as np

from avse.metrics import METRICS, align, is_silent

log = logging.getLogger(__name__)


def _stoi(ref: np.ndarray, est: np.ndarray, fs: int, extended: bool) -> float:
    from pystoi import stoi

    name = "ESTOI" if extended else "STOI"
    ref, est = align(ref, est, fs)
    if is_silent(ref) or is_silent(est):
        log.warning("%s: silent %s; returning nan", name, "reference" if is_silent(ref) else "estimate")
        return float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(stoi(ref, est, fs, extended=extended))
    for w in caught:
        if "Not enough STFT frames" in str(w.message):
            log.warning("%s: fewer than 30 non-silent frames; returning nan", name)
            return float("nan")
    return value


@METRICS.register("estoi")
def estoi(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Extended STOI (Jensen & Taal 2016), in [-1, 1] (in practice 0..1)."""
    return _stoi(ref, est, fs, extended=True)


@METRICS.register("stoi")
def stoi(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """STOI (Taal et al. 2011)."""
    return _stoi(ref, est, fs, extended=False)
