"""Blind reverberation-time (T60) estimation from one reverberant, possibly noisy, channel.

Method: maximum-likelihood (ML) fits of free decays, after Ratnam et al. ("Blind
estimation of reverberation time", JASA 114(5), 2003) with the frame pre-selection of
Löllmann, Yilmaz, Jeub and Vary ("An improved algorithm for blind reverberation time
estimation", IWAENC 2010), run per octave band and with a noise floor in the model:

1. ``x`` is resampled to ``fs_proc`` Hz and split into octave bands (``bands``, Hz);
2. a band is cut into blocks of ``block_s`` s (mean square ``e_j``) and sub-frames of
   ``sub_blocks`` blocks. A frame of up to ``n_sub`` sub-frames, one starting at every
   sub-frame, holds a free decay when its first sub-frame lies ``start_db`` dB above the
   band's noise floor (the ``noise_pct`` percentile of the sub-frame energies) and at
   least ``min_sub`` sub-frames from its start have decreasing energy and (``use_max``)
   decreasing peak magnitude; the decay is that run of sub-frames;
3. the blocks of a decay are fitted by ML with the model ``E[e_j] = A a^(2 b j) + N``
   (``N`` the noise floor, ``b`` samples a block, exponential block energies, the
   profile over ``A`` taken on a grid), for ``a`` on a log-spaced T60 grid with
   ``T60 = -3 / (fs log10 a)`` (parabolic refinement); fits on a grid edge are dropped.
   With ``N = 0`` this is Ratnam's ``-M(M-1)/2 ln a - M/2 ln(sum a^(-2n) y(n)^2 / M)``;
4. the estimate is ``scale * q ** power`` (``q`` in s), ``q`` the ``quantile`` of the
   candidates of all bands pooled (the paper's histogram peak, an order statistic here).
   ``scale, power`` undo the method's compression (short T60s come out too long, long
   ones too short, with and without noise).

Defaults: chosen on mini_av dev_reverb (40 utterances of 1.4-3.0 s, babble/music/white/...
noise at 0 or 10 dB SNR) plus 160 re-pairings of its speech, RIRs and noises; ``scale,
power`` fitted there (log-log least squares over noisy and noise-free inputs). Median
relative error |est - T60| / T60 on test_reverb (48 utterances): 0.155 noisy, 0.089
noise-free (predicting the dev median T60 for all: 0.316). Estimates of T60 < 0.3 s in
noise stay too long (test median error 0.38 there): fast decays sink into the noise floor.
Stationary noise alone has chance decays and gives a (meaningless) number; only a signal
without any decreasing run (e.g. constant envelope) gives ``nan``.
About 0.15 s of CPU per 2.5 s utterance. Units: seconds and Hz throughout.
"""
from __future__ import annotations

import logging
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np
from scipy import signal

from avse.errors import InputError

log = logging.getLogger(__name__)

DEFAULTS: Dict[str, object] = dict(
    fs_proc=8000,             # processing rate (Hz)
    bands=((125, 250), (250, 500), (500, 1000), (1000, 2000), (2000, 3800)),  # Hz; None: full band
    block_s=0.004,            # block length of the ML fit (s)
    sub_blocks=12,            # blocks per sub-frame (48 ms)
    n_sub=7,                  # most sub-frames of a decay
    min_sub=3,                # least decreasing sub-frames of a free decay
    use_max=True,             # the peak magnitude must decrease too (Löllmann et al.)
    noise_pct=5.0,            # percentile of the sub-frame energies taken as noise floor
    start_db=6.0,             # a decay starts at least this far above the floor (dB)
    quantile=0.2,             # order statistic of the pooled candidates
    t60_range=(0.05, 3.0),    # search grid (s)
    n_grid=60,
    amp_db=9.0,               # profile range of the decay's amplitude (+- dB around its start)
    scale=1.76, power=1.45,   # calibration T60 = scale * q ** power (q in s)
    min_candidates=3,         # fewer candidates: nan
)
MIN_SECONDS = 0.5


def ml_decay_t60(segments: Sequence[np.ndarray], floor: float, dt: float, grid: np.ndarray,
                 amp_db: float = 9.0, first: int = 1) -> np.ndarray:
    """ML T60 (s) of each decay: ``segments`` are 1-D arrays of block mean squares (blocks
    of ``dt`` s), ``floor`` the noise power, ``grid`` increasing T60 values (s) ``(G,)``;
    ``first`` blocks set the start level of the amplitude grid. Returns ``(K,)``, ``nan``
    where the best T60 is on the grid's first or last point."""
    k_seg = len(segments)
    if k_seg == 0:
        return np.zeros(0)
    n_max = max(len(s) for s in segments)
    e = np.zeros((k_seg, n_max))
    w = np.zeros((k_seg, n_max))
    for i, s in enumerate(segments):
        e[i, :len(s)], w[i, :len(s)] = s, 1.0
    g = 10.0 ** (-6.0 * np.arange(n_max)[None, :] * dt / grid[:, None])         # (G, J) energy decay
    a0 = np.maximum(e[:, :first].mean(1) - floor, 0.1 * floor + 1e-30)          # (K,)
    amps = a0[:, None] * 10.0 ** (np.arange(-amp_db, amp_db + 1e-9, 0.75) / 10.0)[None, :]  # (K, A)
    best = np.empty((k_seg, len(grid)))
    for c in range(0, k_seg, 8):                                                # (k, G, A, J) chunks
        v = amps[c:c + 8, None, :, None] * g[None, :, None, :] + floor
        ll = -np.sum(w[c:c + 8, None, None, :] * (np.log(v) + e[c:c + 8, None, None, :] / v), axis=-1)
        best[c:c + 8] = ll.max(axis=2)
    k = np.argmax(best, axis=1)
    kk, r = np.clip(k, 1, len(grid) - 2), np.arange(k_seg)
    l0, l1, l2 = best[r, kk - 1], best[r, kk], best[r, kk + 1]
    den = l0 - 2.0 * l1 + l2
    d = np.where(den < 0, 0.5 * (l0 - l2) / np.where(den < 0, den, -1.0), 0.0)
    lg = np.log(grid)
    t = np.exp(lg[kk] + np.clip(d, -0.5, 0.5) * (lg[1] - lg[0]))
    return np.where((k > 0) & (k < len(grid) - 1), t, np.nan)


def free_decays(y: np.ndarray, fs: float, block_s: float, sub_blocks: int, n_sub: int, min_sub: int,
                use_max: bool = True, noise_pct: float = 5.0, start_db: float = 6.0
                ) -> Tuple[List[np.ndarray], float, float]:
    """Free decays of the band signal ``y`` ``(N,)`` at ``fs`` Hz (step 2 of the module doc).

    Returns ``(segments, floor, dt)``: block mean squares of each decay (1-D arrays), the
    noise floor (power) and the block length ``dt`` (s)."""
    b = max(1, int(round(block_s * fs)))
    n_blk = len(y) // b
    blocks = y[:n_blk * b].reshape(n_blk, b)
    e = np.mean(blocks ** 2, axis=1)
    ns = n_blk // sub_blocks
    if ns < max(min_sub, 1):
        return [], 0.0, b / fs
    es = e[:ns * sub_blocks].reshape(ns, sub_blocks).mean(1)                    # sub-frame energy
    pk = np.abs(blocks[:ns * sub_blocks]).max(1).reshape(ns, sub_blocks).max(1)  # sub-frame peak
    floor = float(np.percentile(es, noise_pct))
    dec = es[1:] < es[:-1]
    if use_max:
        dec &= pk[1:] < pk[:-1]
    start = es >= floor * 10.0 ** (start_db / 10.0)
    segs = []
    for s in range(ns - min_sub + 1):
        if not start[s]:
            continue
        n = 1
        while n < n_sub and s + n < ns and dec[s + n - 1]:
            n += 1
        if n >= min_sub:
            segs.append(e[s * sub_blocks:(s + n) * sub_blocks])
    return segs, floor, b / fs


def band_signals(x: np.ndarray, fs: int, fs_proc: int | None, bands) -> Tuple[List[np.ndarray], int]:
    """``x`` ``(N,)`` resampled to ``fs_proc`` Hz (when lower than ``fs``) and band-passed
    (4th-order Butterworth, zero phase) into ``bands`` ``[(lo, hi), ...]`` Hz; returns the
    band signals and their rate (Hz). Bands above 0.475 ``fs`` are cut or left out."""
    if fs_proc and fs_proc < fs:
        g = math.gcd(int(fs), int(fs_proc))
        x = signal.resample_poly(x, int(fs_proc) // g, int(fs) // g)
        fs = int(fs_proc)
    if not bands:
        return [x], fs
    out = []
    for lo, hi in bands:
        hi = min(float(hi), 0.475 * fs)
        if lo < hi:
            out.append(signal.sosfiltfilt(signal.butter(4, [lo, hi], btype="bandpass", fs=fs, output="sos"), x))
    return out, fs


def estimate_t60(x: np.ndarray, fs: int, **options) -> float:
    """Blind T60 (s) of the 1-D recording ``x`` ``(N,)`` sampled at ``fs`` Hz.

    ``options`` override :data:`DEFAULTS` (see the module doc). Returns ``nan``, with a
    log warning that gives the reason, when too few free decays are found.
    Raises :class:`InputError` for an unknown option, a non-real or non-1-D ``x``,
    non-finite samples, ``fs < 1000`` or a recording shorter than 0.5 s.
    """
    bad = set(options) - set(DEFAULTS)
    if bad:
        raise InputError(f"estimate_t60: unknown option(s) {sorted(bad)}; known: {sorted(DEFAULTS)}")
    o = {**DEFAULTS, **options}
    x = np.asarray(x)
    if x.ndim != 1 or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InputError(f"estimate_t60: expected a real 1-D signal, got shape {x.shape} dtype {x.dtype}")
    if not (np.isfinite(fs) and fs >= 1000):
        raise InputError(f"estimate_t60: sampling rate must be >= 1000 Hz, got {fs}")
    if x.size < MIN_SECONDS * fs:
        raise InputError(f"estimate_t60: signal of {x.size} samples ({x.size / fs:.3f} s) is shorter "
                         f"than {MIN_SECONDS} s")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError("estimate_t60: the signal has NaN or infinite samples")
    if not np.any(x):
        log.warning("estimate_t60: all-zero signal, no free decay; returning nan")
        return float("nan")
    x = x / np.max(np.abs(x))
    lo, hi = o["t60_range"]
    grid = np.exp(np.linspace(math.log(lo), math.log(hi), int(o["n_grid"])))
    ys, fsp = band_signals(x, int(fs), o["fs_proc"], o["bands"])
    cands, n_seg = [], 0
    for y in ys:
        segs, floor, dt = free_decays(y, fsp, o["block_s"], int(o["sub_blocks"]), int(o["n_sub"]),
                                      int(o["min_sub"]), o["use_max"], o["noise_pct"], o["start_db"])
        n_seg += len(segs)
        t = ml_decay_t60(segs, max(floor, 1e-30), dt, grid, o["amp_db"], int(o["sub_blocks"]))
        cands.extend(t[np.isfinite(t)].tolist())
    if len(cands) < max(int(o["min_candidates"]), 1):
        log.warning("estimate_t60: %d free decays, %d ML fits inside %s s (need %d); returning nan",
                    n_seg, len(cands), (lo, hi), int(o["min_candidates"]))
        return float("nan")
    q = float(np.quantile(cands, o["quantile"]))
    return float(o["scale"] * q ** o["power"])
