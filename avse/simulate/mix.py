"""Mixing: sources (optionally through a room), interferers at an SIR, noise at an SNR.

Definitions (all energies on the reference microphone, channel 0):

* SNR = 10 log10(E[sum of the speech images] / E[noise]), the speech images being
  the reverberant images of all K sources (the dry sources without a room);
* SIR of interferer k = 10 log10(E[target image] / E[image of source k]);
  ``sir`` in the result is the target against the sum of all interferers.

Every source is trimmed or zero-padded to the length of the first (target) source;
reverberant images are the convolution truncated to that length. The noise segment
starts at a random offset; a noise shorter than the utterance is looped with an
equal-power crossfade. With several microphones and a mono noise, each channel gets
a segment at its own offset (uncorrelated noise).

When the mixture or any component would exceed ``peak`` in absolute value, every
component is multiplied by the same factor (``gain``, 1.0 otherwise), and the
mixture is the float32 sum of the scaled components, so ``mixture == sum(reverb) +
noise`` holds exactly and the SNR and SIR are unchanged.
"""
import math
from typing import Dict, List, Sequence

import numpy as np
from scipy.signal import fftconvolve

from avse.errors import InputError


def _energy(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.sum(x * x))


def _ref(x: np.ndarray) -> np.ndarray:
    return x[0] if x.ndim == 2 else x


def _db_ratio(num: float, den: float) -> float:
    if den <= 0:
        return math.inf
    if num <= 0:
        return -math.inf
    return 10.0 * math.log10(num / den)


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the last axis of ``x`` to ``n`` samples."""
    if x.shape[-1] >= n:
        return x[..., :n]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]
    return np.pad(x, pad)


def loop_crossfade(x: np.ndarray, n: int, crossfade: int) -> np.ndarray:
    """Repeat ``x`` (1-D) to at least ``n`` samples, joining copies with an
    equal-power crossfade of ``crossfade`` samples (at most a quarter of ``x``)."""
    x = np.asarray(x, dtype=np.float64)
    t = len(x)
    if t >= n:
        return x[:n]
    xf = max(0, min(int(crossfade), t // 4))
    hop = t - xf
    copies = int(math.ceil(max(n - t, 0) / hop)) + 1
    out = np.zeros(hop * (copies - 1) + t)
    if xf:
        theta = (np.arange(xf) + 0.5) / xf * (np.pi / 2)
        fade_in, fade_out = np.sin(theta), np.cos(theta)
    for c in range(copies):
        seg = x.copy()
        if xf and c > 0:
            seg[:xf] *= fade_in
        if xf and c < copies - 1:
            seg[-xf:] *= fade_out
        out[c * hop:c * hop + t] += seg
    return out[:n] if len(out) >= n else fit_length(out, n)


def noise_segment(noise: np.ndarray, n: int, rng: np.random.Generator, crossfade: int = 800) -> tuple:
    """``n`` samples of ``noise`` (``(T,)`` or ``(C, T)``) from a random offset; looped
    with a crossfade when shorter. Returns ``(segment float64, offset)``."""
    noise = np.asarray(noise, dtype=np.float64)
    t = noise.shape[-1]
    if t == 0:
        raise InputError("noise signal is empty")
    if t >= n:
        off = int(rng.integers(0, t - n + 1))
        return noise[..., off:off + n], off
    off = int(rng.integers(0, t))
    if noise.ndim == 1:
        looped = loop_crossfade(noise, n + off, crossfade)
    else:
        looped = np.stack([loop_crossfade(c, n + off, crossfade) for c in noise])
    return looped[..., off:off + n], off


def _as_list(v, k: int, name: str) -> List[float]:
    if v is None:
        return [None] * k
    if isinstance(v, (int, float, np.floating, np.integer)):
        return [float(v)] * k
    v = [float(x) for x in v]
    if len(v) != k:
        raise InputError(f"{name}: expected {k} values (one per interferer), got {len(v)}")
    return v


def mix_utterance(sources: Sequence[np.ndarray], noise: np.ndarray | None, snr_db: float | None,
                  sir_db: float | Sequence[float] | None = None, rirs: np.ndarray | None = None,
                  direct: np.ndarray | None = None, peak: float = 0.9,
                  rng: np.random.Generator | None = None, crossfade: int = 800) -> Dict[str, object]:
    """Mix ``K`` sources and a noise.

    Args:
        sources: K dry 1-D signals at one sample rate; source 0 is the target and
            sets the length ``N``.
        noise: 1-D noise recording (any length), ``(C, T)`` with ``C >= M``
            channels, or ``None`` (no noise).
        snr_db: SNR of the speech images to the noise; ``None`` leaves the noise
            unscaled.
        sir_db: SIR of each interferer (a number for all, or one per interferer);
            ``None`` leaves the interferers unscaled.
        rirs: ``(K, M, L)`` room impulse responses, or ``None`` (anechoic).
        direct: ``(K, M, L)`` direct-path responses; the targets are the sources
            through them. ``None``: the targets are the dry sources.
        peak: largest absolute sample value allowed in any output array.
        rng: random stream for the noise offsets (default: a fixed one).
        crossfade: samples of the crossfade when the noise is looped.
    Returns:
        dict of float32 arrays ``mixture`` (``(M, N)`` with a room, else ``(N,)``),
        ``targets`` (K), ``reverb`` (K reverberant images; the sources when
        anechoic), ``noise``, plus ``gain`` (the joint rescale, 1.0 when none was
        needed), ``snr`` (achieved, dB; ``inf`` without noise), ``sir`` (achieved
        target-to-interferers ratio, dB; ``None`` when K = 1), ``sirs`` (per
        interferer) and ``noise_offset`` (per channel).
    Raises:
        InputError: empty or silent target, shape mismatches, silent noise or
            interferer where a ratio must be set, a non-positive peak.
    """
    if not sources:
        raise InputError("mix_utterance needs at least one source")
    if not peak > 0:
        raise InputError(f"peak must be positive, got {peak}")
    rng = rng if rng is not None else np.random.default_rng(0)
    src = [np.asarray(s, dtype=np.float64) for s in sources]
    for i, s in enumerate(src):
        if s.ndim != 1:
            raise InputError(f"source {i} must be 1-D, got shape {s.shape}")
        if not np.all(np.isfinite(s)):
            raise InputError(f"source {i} has NaN or infinite samples")
    n = len(src[0])
    if n == 0 or _energy(src[0]) == 0:
        raise InputError("the target source is empty or silent")
    k_src = len(src)
    src = [fit_length(s, n) for s in src]

    if rirs is not None:
        rirs = np.asarray(rirs, dtype=np.float64)
        if rirs.ndim != 3 or rirs.shape[0] != k_src:
            raise InputError(f"rirs must be (K={k_src}, M, L), got shape {rirs.shape}")
        reverb = [fftconvolve(s[None, :], rirs[k], axes=-1)[:, :n] for k, s in enumerate(src)]
        if direct is not None:
            direct = np.asarray(direct, dtype=np.float64)
            if direct.shape[:2] != rirs.shape[:2]:
                raise InputError(f"direct must be {rirs.shape[:2]} x L like rirs, got shape {direct.shape}")
            targets = [fftconvolve(s[None, :], direct[k], axes=-1)[:, :n] for k, s in enumerate(src)]
        else:
            targets = [s.copy() for s in src]
        m = rirs.shape[1]
    else:
        reverb = [s.copy() for s in src]
        targets = [s.copy() for s in src]
        m = None

    # interferers at the requested SIR (reverberant images on the reference mic)
    e_target = _energy(_ref(reverb[0]))
    if e_target == 0:
        raise InputError("the target's image is silent")
    for k, sir in zip(range(1, k_src), _as_list(sir_db, k_src - 1, "sir_db")):
        if sir is None:
            continue
        e_k = _energy(_ref(reverb[k]))
        if e_k == 0:
            raise InputError(f"interferer {k} is silent over the target's length; cannot set its SIR")
        g = math.sqrt(e_target / e_k / 10 ** (sir / 10))
        reverb[k] = reverb[k] * g
        targets[k] = targets[k] * g

    speech = sum(reverb)
    offsets: List[int] = []
    if noise is None:
        nz = np.zeros_like(speech)
    else:
        noise = np.asarray(noise, dtype=np.float64)
        if not np.all(np.isfinite(noise)):
            raise InputError("noise has NaN or infinite samples")
        chans = 1 if m is None else m
        if noise.ndim == 1:  # one segment per channel, each at its own offset
            rows = []
            for _ in range(chans):
                seg, off = noise_segment(noise, n, rng, crossfade)
                rows.append(seg)
                offsets.append(off)
            nz = rows[0] if m is None else np.stack(rows)
        elif noise.ndim == 2 and noise.shape[0] >= chans:  # multichannel: one offset
            seg, off = noise_segment(noise[:chans], n, rng, crossfade)
            nz = seg[0] if m is None else seg
            offsets = [off] * chans
        else:
            raise InputError(f"noise must be 1-D or (C >= {chans}, T), got shape {noise.shape}")
        if snr_db is not None:
            e_noise = _energy(_ref(nz))
            if e_noise == 0:
                raise InputError("the noise segment is silent; cannot set the SNR")
            nz = nz * math.sqrt(_energy(_ref(speech)) / e_noise / 10 ** (float(snr_db) / 10))

    comps = targets + reverb + [nz]
    mixture = speech + nz
    top = max(float(np.max(np.abs(x))) for x in comps + [mixture])
    gain = 1.0 if top <= peak else peak / top
    targets = [(t * gain).astype(np.float32) for t in targets]
    reverb = [(r * gain).astype(np.float32) for r in reverb]
    nz = (nz * gain).astype(np.float32)
    mixture = np.zeros_like(nz)
    for r in reverb:
        mixture = mixture + r
    mixture = mixture + nz  # float32 sum of the written components

    speech_ref = _ref(sum(r.astype(np.float64) for r in reverb))
    snr = _db_ratio(_energy(speech_ref), _energy(_ref(nz))) if noise is not None else math.inf
    e_t = _energy(_ref(reverb[0]))
    sirs = [_db_ratio(e_t, _energy(_ref(reverb[k]))) for k in range(1, k_src)]
    sir = _db_ratio(e_t, _energy(_ref(sum(r.astype(np.float64) for r in reverb[1:])))) if k_src > 1 else None
    return {"mixture": mixture, "targets": targets, "reverb": reverb, "noise": nz, "gain": float(gain),
            "snr": float(snr), "sir": sir, "sirs": sirs, "noise_offset": offsets}

