"""Scale-invariant SDR and plain SDR.

SI-SDR (Le Roux, Wisdom, Erdogan, Hershey, "SDR - half-baked or well done?", ICASSP
2019): with zero-mean ``s`` (reference) and ``s_hat`` (estimate),

    alpha = <s_hat, s> / ||s||^2,   e_target = alpha s,   e_res = s_hat - e_target,
    SI-SDR = 10 log10(||e_target||^2 / ||e_res||^2)   [dB].

It ignores the gain of the estimate; a scaled copy of the reference scores the cap
:data:`MAX_DB`. Values are clipped to [-MAX_DB, MAX_DB]. A silent reference or a
silent estimate gives ``nan`` (the ratio is 0/0).

``sdr`` is the plain SDR (the SNR of the estimate): 10 log10(||s||^2 / ||s - s_hat||^2),
no mean removal, no scaling, no distortion filter - *not* BSS-eval's SDR.
"""
import math

import numpy as np

from avse.metrics import METRICS, align

#: cap (dB) for a perfect estimate; also the floor for an estimate orthogonal to the reference
MAX_DB = 100.0


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum rather than np.dot: a 1-D BLAS dot may wake every BLAS thread, which on a
    # busy machine costs ~100x more than the product itself
    return float(np.einsum("i,i->", a, b))


def _ratio_db(num: float, den: float) -> float:
    if num <= 0.0 and den <= 0.0:
        return float("nan")
    if den <= num * 10 ** (-MAX_DB / 10):
        return MAX_DB
    if num <= den * 10 ** (-MAX_DB / 10):
        return -MAX_DB
    return 10.0 * math.log10(num / den)


@METRICS.register("si_sdr")
def si_sdr(ref: np.ndarray, est: np.ndarray, fs: int | None = None, zero_mean: bool = True) -> float:
    """SI-SDR in dB (``fs`` unused; lengths are aligned as in :func:`avse.metrics.align`)."""
    ref, est = align(ref, est, fs)
    if zero_mean:
        ref = ref - ref.mean()
        est = est - est.mean()
    ref_e = _dot(ref, ref)
    if ref_e <= 0.0 or not np.any(est):
        return float("nan")
    alpha = _dot(est, ref) / ref_e
    target = alpha * ref
    res = est - target
    return _ratio_db(_dot(target, target), _dot(res, res))


@METRICS.register("sdr")
def sdr(ref: np.ndarray, est: np.ndarray, fs: int | None = None) -> float:
    """Plain SDR (SNR of the estimate) in dB; ``nan`` for a silent reference."""
    ref, est = align(ref, est, fs)
    ref_e = _dot(ref, ref)
    if ref_e <= 0.0:
        return float("nan")
    d = ref - est
    return _ratio_db(ref_e, _dot(d, d))


def si_sdr_improvement(ref: np.ndarray, est: np.ndarray, mix: np.ndarray, fs: int | None = None) -> float:
    """SI-SDR of ``est`` minus SI-SDR of the unprocessed ``mix`` (dB)."""
    return si_sdr(ref, est, fs) - si_sdr(ref, mix, fs)
