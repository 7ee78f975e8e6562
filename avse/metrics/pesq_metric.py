"""PESQ through the ``pesq`` package (ITU-T P.862 C code).

The package returns MOS-LQO: for wide band the P.862.2 mapping, for narrow band the
P.862.1 mapping of the raw P.862 score ``x``:

    y = 0.999 + 4 / (1 + exp(-1.4945 x + 4.6607)).

This mapping is strictly increasing, so the raw score is recovered exactly by

    x = (4.6607 - ln(4 / (y - 0.999) - 1)) / 1.4945     for 0.999 < y < 4.999

(:func:`nb_mos_lqo_to_raw`). Raw narrow-band P.862 is what ``pypesq``, Loizou's
MATLAB ``pesq.m`` and many enhancement papers report as "PESQ" (e.g. the UDiffSE
family); it is ``pesq_nb_raw`` here. Raw scores lie in [-0.5, 4.5].

Sample rates: PESQ runs at 16 kHz (wide and narrow band) or 8 kHz (narrow band only).
Signals at another rate are resampled to 16 kHz (polyphase, ``avse.io.audio.resample``).

Undefined cases return ``nan`` instead of raising: a silent reference or estimate,
a signal shorter than 0.25 s, and the C code's "No utterances detected".
"""
import logging
import math

import numpy as np

from avse.io.audio import resample
from avse.metrics import METRICS, align, is_silent

log = logging.getLogger(__name__)

# P.862.1 mapping constants
_A, _B = 1.4945, 4.6607
_LO, _SPAN = 0.999, 4.0


def nb_raw_to_mos_lqo(x: float) -> float:
    """P.862.1: raw narrow-band P.862 score -> MOS-LQO."""
    return _LO + _SPAN / (1.0 + math.exp(-_A * x + _B))


def nb_mos_lqo_to_raw(y: float) -> float:
    """Inverse of P.862.1: narrow-band MOS-LQO -> raw P.862 score.

    ``nan`` in gives ``nan``; a value outside the open range (0.999, 4.999) of the
    mapping gives ``nan`` too (it cannot come from PESQ).
    """
    y = float(y)
    if not math.isfinite(y) or y <= _LO or y >= _LO + _SPAN:
        return float("nan")
    return (_B - math.log(_SPAN / (y - _LO) - 1.0)) / _A


def _pesq(ref: np.ndarray, est: np.ndarray, fs: int, mode: str) -> float:
    import pesq as pesq_pkg

    ref, est = align(ref, est, fs)
    if is_silent(ref) or is_silent(est):
        log.warning("PESQ-%s: silent %s; returning nan", mode.upper(),
                    "reference" if is_silent(ref) else "estimate")
        return float("nan")
    if fs not in ((16000, 8000) if mode == "nb" else (16000,)):
        ref = resample(ref, fs, 16000).astype(np.float64)
        est = resample(est, fs, 16000).astype(np.float64)
        fs = 16000
    if ref.size < fs // 4:
        log.warning("PESQ-%s: signal shorter than 0.25 s (%d samples at %d Hz); returning nan",
                    mode.upper(), ref.size, fs)
        return float("nan")
    try:
        return float(pesq_pkg.pesq(fs, ref, est, mode))
    except (pesq_pkg.NoUtterancesError, pesq_pkg.BufferTooShortError) as e:
        msg = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        log.warning("PESQ-%s: %s; returning nan", mode.upper(), msg)
        return float("nan")


@METRICS.register("pesq_wb")
def pesq_wb(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Wide-band PESQ, MOS-LQO (P.862.2); 16 kHz (other rates are resampled)."""
    return _pesq(ref, est, fs, "wb")


@METRICS.register("pesq_nb")
def pesq_nb(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Narrow-band PESQ, MOS-LQO (P.862.1); run at 8 or 16 kHz (others resampled to 16)."""
    return _pesq(ref, est, fs, "nb")


@METRICS.register("pesq_nb_raw")
def pesq_nb_raw(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Raw narrow-band P.862 score: :func:`pesq_nb` through :func:`nb_mos_lqo_to_raw`."""
    return nb_mos_lqo_to_raw(pesq_nb(ref, est, fs))
