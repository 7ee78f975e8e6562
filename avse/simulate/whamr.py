"""One WHAMR!-style mixture (Maciejewski et al., ICASSP 2020) from two dry utterances, a
noise recording and a room, on the reference microphone.

Signals (16 kHz, ``N_max = max(len(s1), len(s2))`` samples; the shorter source is
zero-padded at the end):

* levels: the sources keep wsj0-2mix's relative level, ``10 log10(P1 / P2) = gain1 -
  gain2`` (``P``: mean power of the dry utterance over its own length);
* ``s<k>_anechoic``: source ``k`` through the direct path of the room (``max_order``
  0), ``s<k>_reverb``: through the full room; both scaled so that the anechoic image
  has the dry source's energy (as WHAMR! does), so the anechoic and reverberant
  versions share one scale;
* ``noise``: the noise from sample ``start`` on (looped with a crossfade when short),
  scaled so that the mean power of ``s1_anechoic`` over speaker 1's length over that
  of the noise is ``snr_db`` (WHAM!'s ``target_speaker1_snr_db``);
* mixtures per condition (anechoic, reverb): ``mix_clean = s1 + s2``,
  ``mix_single = s1 + noise``, ``mix_both = s1 + s2 + noise``;
* one joint factor keeps every output within ``peak``.

``min`` versions are the first ``N_min = min(len(s1), len(s2))`` samples of the
``max`` ones (same sources, room and noise); 8 kHz versions are resampled from
16 kHz (RIRs simulated at 16 kHz, as in WHAMR!). Unlike the official max mixtures,
which keep the WHAM! noise before and after the speech, ours start and end with it.
"""
import math
from typing import Dict

import numpy as np
from scipy.signal import fftconvolve

from avse.errors import InputError
from avse.io.audio import resample
from avse.simulate.mix import fit_length, loop_crossfade

SOURCES = ("s1_anechoic", "s2_anechoic", "s1_reverb", "s2_reverb", "noise")
MIXTURES = tuple(f"mix_{m}_{c}" for m in ("clean", "single", "both") for c in ("anechoic", "reverb"))


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x, np.float64) ** 2)) if len(x) else 0.0


def whamr_sources(s1: np.ndarray, s2: np.ndarray, noise: np.ndarray, gains_db: tuple, snr_db: float,
                  rirs: np.ndarray, direct: np.ndarray, start: int = 0, peak: float = 0.9,
                  crossfade: int = 800) -> Dict[str, object]:
    """The five source signals of one mixture.

    Args:
        s1, s2: dry utterances ``(N1,)``, ``(N2,)`` at 16 kHz.
        noise: ``(T,)`` noise recording at 16 kHz (one channel).
        gains_db: wsj0-2mix levels ``(gain1, gain2)`` in dB.
        snr_db: speaker-1-to-noise ratio (dB).
        rirs, direct: ``(2, M, L)`` responses of the room and of its direct path;
            microphone 0 is used.
        start: first noise sample used.
    Returns:
        dict with float32 ``(N_max,)`` arrays for :data:`SOURCES`, ``n_min`` (int) and
        ``gain`` (the joint anti-clipping factor).
    Raises:
        InputError: silent or empty sources, silent noise, bad shapes.
    """
    src = [np.asarray(s, np.float64) for s in (s1, s2)]
    if any(s.ndim != 1 or len(s) == 0 or not np.any(s) for s in src):
        raise InputError("both sources must be non-empty, non-silent 1-D signals")
    rirs, direct = np.asarray(rirs, np.float64), np.asarray(direct, np.float64)
    if rirs.ndim != 3 or rirs.shape[0] != 2 or direct.shape[:2] != rirs.shape[:2]:
        raise InputError(f"rirs and direct must be (2, M, L), got {rirs.shape} and {direct.shape}")
    n = [len(s) for s in src]
    n_max, n_min = max(n), min(n)
    rel = 10 * math.log10(_power(src[0]) / _power(src[1])) - (gains_db[0] - gains_db[1])
    src[1] = src[1] * 10 ** (rel / 20)
    out: Dict[str, object] = {}
    for k, s in enumerate(src):
        an = fftconvolve(s, direct[k, 0])[:n_max]
        rev = fftconvolve(s, rirs[k, 0])[:n_max]
        e_an = float(np.sum(an ** 2))
        if e_an == 0:
            raise InputError(f"source {k + 1}: the direct path is silent (source at the microphone?)")
        c = math.sqrt(float(np.sum(s ** 2)) / e_an)
        out[f"s{k + 1}_anechoic"] = fit_length(an * c, n_max)
        out[f"s{k + 1}_reverb"] = fit_length(rev * c, n_max)
    noise = np.asarray(noise, np.float64)
    if noise.ndim != 1 or not np.any(noise):
        raise InputError("the noise must be a non-silent 1-D signal")
    start = int(start) if 0 <= int(start) < len(noise) else 0
    seg = loop_crossfade(noise[start:], n_max, crossfade)
    p_noise = _power(seg)
    if p_noise == 0:
        raise InputError("the noise segment is silent")
    p_s1 = _power(out["s1_anechoic"][:n[0]])
    out["noise"] = seg * math.sqrt(p_s1 / p_noise / 10 ** (snr_db / 10))
    top = max(float(np.max(np.abs(x))) for x in mixtures(out).values())
    top = max(top, max(float(np.max(np.abs(out[k]))) for k in SOURCES))
    gain = 1.0 if top <= peak else peak / top
    for k in SOURCES:
        out[k] = (out[k] * gain).astype(np.float32)
    out["n_min"], out["gain"] = n_min, gain
    return out


def mixtures(sig: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The six mixtures (:data:`MIXTURES`) of the sources, as float32 sums."""
    out = {}
    for c in ("anechoic", "reverb"):
        s1, s2, nz = sig[f"s1_{c}"], sig[f"s2_{c}"], sig["noise"]
        out[f"mix_clean_{c}"] = (s1 + s2).astype(np.float32)
        out[f"mix_single_{c}"] = (s1 + nz).astype(np.float32)
        out[f"mix_both_{c}"] = (s1 + s2 + nz).astype(np.float32)
    return out


def version(sig: Dict[str, object], fs: int, length: str) -> Dict[str, np.ndarray]:
    """Every signal (sources and mixtures) at ``fs`` (16000 or 8000) for ``length``
    ``max`` or ``min``; mixtures are summed after resampling, so they equal the sum of
    the written sources."""
    if length not in ("min", "max"):
        raise InputError(f"length must be min or max, got {length!r}")
    src = {k: np.asarray(sig[k], np.float32) for k in SOURCES}
    n = len(src["noise"]) if length == "max" else int(sig["n_min"])
    if fs != 16000:
        src = {k: resample(v, 16000, fs).astype(np.float32) for k, v in src.items()}
        n = int(round(n * fs / 16000))
    src = {k: v[:n] for k, v in src.items()}
    return {**src, **mixtures(src)}
