"""Single-channel weighted prediction error (WPE) dereverberation: ``method: wpe``.

Nakatani, Yoshioka, Kinoshita, Miyoshi, Juang, "Speech dereverberation based on
variance-normalized delayed linear prediction", IEEE TASLP 2010. Per frequency bin ``f``
of the linear STFT ``Y`` (F, T), the late reverberation is predicted from the past
observation, ``delay`` frames and more back, and subtracted::

    D[f, t] = Y[f, t] - sum_{k=0}^{taps-1} G[f, k] Y[f, t - delay - k]

with ``G`` the minimiser of ``sum_t |D[f, t]|^2 / lambda[f, t]`` (the maximum-likelihood
filter when ``D`` is zero-mean complex Gaussian of time-varying variance ``lambda``), and
``lambda[f, t] = max(|D[f, t]|^2, eps mean_t |D[f, t]|^2)`` re-estimated from the previous
iteration's ``D`` (``iterations`` times, starting from ``|Y|^2``). Speech is correlated
over a few frames only, so the delayed prediction takes the reverberation and leaves the
direct path and the early reflections (``delay`` frames of ``hop`` samples: 32 ms with
4 x 8 ms, the length of the analysis window: a shorter delay lets the prediction take
speech that the overlapping frames share).

The variance floor is relative to each bin's mean power: near-silent frames (the zero
frames a network's input is padded with, digital silence) would otherwise get weights
``1 / lambda`` that swamp the speech frames. On 12 dev mixtures, UDiffSE+ then WPE (50
taps, delay 3) on the padded spectrogram: -1.57 dB SI-SDR with a floor of 1e-10 of the
maximum, -1.08 dB with ``eps`` 1e-2 (1e-4 / 1e-3 / 1e-1: -1.17 / -1.11 / -1.13; the
unpadded signal: -1.04).

Noise is not predictable either, but it spoils the estimate of ``G``; WPE is therefore
run after the diffusion denoiser in this toolkit (``cascade``: ``udiffse_plus`` then
``wpe``, ``egs/mini_av/avse1/conf/enhance_udiffse_plus_wpe.yaml``, where the settings were
chosen). SI-SDR gain over the noisy input on mini_av (against the direct-path target,
T60 0.2-0.8 s, 0 and 10 dB SNR; ``egs/mini_av/avse1/RESULTS_dereverb.md``): UDiffSE+ alone
+0.71 dB on dev_reverb and +1.63 dB on test_reverb, UDiffSE+ then WPE +1.45 and +1.88.

:class:`WPE` follows the enhancer interface (:mod:`avse.enhance.base`): ``X`` (F, T)
complex *compressed* STFT -> the same; it decompresses with the model's front-end
(``needs = ("frontend",)``), filters, and compresses back. It does not call the prior,
so it is a step of a cascade rather than a method on its own (it runs alone too).
"""
from __future__ import annotations

import time

import torch

from avse.enhance.base import ENHANCERS, constructor_defaults
from avse.errors import InputError


def delayed_frames(Y: torch.Tensor, delay: int, taps: int) -> torch.Tensor:
    """``(F, T)`` -> ``(F, T, taps)``: ``out[f, t, k] = Y[f, t - delay - k]`` (0 before the start)."""
    F, T = Y.shape
    pad = torch.cat([Y.new_zeros(F, delay + taps - 1), Y], dim=-1)[:, :T + taps - 1]
    return pad.unfold(-1, taps, 1).flip(-1)                      # (F, T, taps)


def wpe(Y: torch.Tensor, taps: int = 30, delay: int = 4, iterations: int = 3,
        eps: float = 1e-2, ridge: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """WPE of a linear STFT ``Y`` (F, T) complex -> ``(D, G)``: the dereverberated STFT
    (F, T) and the prediction filter (F, taps) (module docstring). ``ridge``: Tikhonov
    load of the correlation matrix, relative to its mean diagonal (keeps silent bins
    solvable). Computed in double precision; ``D`` has ``Y``'s dtype."""
    if Y.dim() != 2 or not Y.is_complex():
        raise InputError(f"wpe: Y must be a complex (F, T) STFT, got {Y.dtype} {tuple(Y.shape)}")
    if int(taps) < 1 or int(delay) < 1 or int(iterations) < 1:
        raise InputError(f"wpe: need taps >= 1, delay >= 1, iterations >= 1; got {taps}, {delay}, {iterations}")
    Yd = Y.detach().to(torch.complex128)
    X = delayed_frames(Yd, int(delay), int(taps))                # (F, T, K)
    eye = torch.eye(int(taps), dtype=Yd.dtype, device=Yd.device)
    D, G = Yd, None
    for _ in range(int(iterations)):
        P = D.abs().pow(2)
        lam = torch.maximum(P, eps * P.mean(-1, keepdim=True)).clamp_min(1e-300)   # (F, T)
        Xw = X / lam[..., None]
        R = torch.einsum("ftk,ftl->fkl", Xw.conj(), X)             # (F, K, K)
        p = torch.einsum("ftk,ft->fk", Xw.conj(), Yd)              # (F, K)
        load = ridge * torch.diagonal(R, dim1=-2, dim2=-1).real.mean(-1).clamp_min(1e-300)
        G = torch.linalg.solve(R + load[:, None, None] * eye, p.unsqueeze(-1)).squeeze(-1)
        D = Yd - torch.einsum("ftk,fk->ft", X, G)
    return D.to(Y.dtype), G


@ENHANCERS.register("wpe")
class WPE:
    """``method: wpe`` (module docstring): ``taps`` (frames of prediction filter),
    ``delay`` (frames skipped: what is kept as direct path and early reflections),
    ``iterations`` (variance re-estimates), ``eps`` (variance floor relative to each
    bin's mean power). ``last_stats``: ``nfe`` 0, ``seconds``."""

    needs = ("frontend",)
    needs_grad = False
    n_sources = 1

    def __init__(self, taps: int = 30, delay: int = 4, iterations: int = 3, eps: float = 1e-2):
        if int(taps) < 1 or int(delay) < 1 or int(iterations) < 1 or not 0 < float(eps) < 1:
            raise InputError(f"wpe: need taps >= 1, delay >= 1, iterations >= 1 and 0 < eps < 1; "
                             f"got {taps}, {delay}, {iterations}, {eps}")
        self.taps, self.delay, self.iterations, self.eps = int(taps), int(delay), int(iterations), float(eps)
        self.last_stats: dict = {}

    def __call__(self, score_fn, sde, X: torch.Tensor, generator=None, frontend=None, **aux) -> torch.Tensor:
        """``X`` (F, T) complex compressed STFT -> dereverberated, same shape and dtype.
        ``frontend``: the model's front-end. ``score_fn``, ``sde``, ``generator``: unused
        (the enhancer interface)."""
        if frontend is None:
            raise InputError("wpe: needs the model's spectral front-end (keyword frontend=...)")
        if X.dim() != 2 or not X.is_complex():
            raise InputError(f"wpe: X must be a complex (F, T) compressed STFT, got {X.dtype} {tuple(X.shape)}")
        t0 = time.perf_counter()
        # the sampler's output need not be a consistent STFT: WPE runs on its waveform's STFT
        T = X.shape[-1]
        Y = frontend.stft(frontend.istft(frontend.decompress(X), length=(T - 1) * frontend.hop))
        if Y.shape[-1] < T:
            Y = torch.cat([Y, Y.new_zeros(*Y.shape[:-1], T - Y.shape[-1])], dim=-1)
        Y = Y[..., :T]
        D, _ = wpe(Y, self.taps, self.delay, self.iterations, self.eps)
        self.last_stats = {"nfe": 0, "seconds": time.perf_counter() - t0}
        return frontend.compress(D).to(X.dtype)


WPE.DEFAULTS = constructor_defaults(WPE)
