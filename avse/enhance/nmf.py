"""Itakura-Saito non-negative matrix factorisation (IS-NMF) of a power spectrogram.

The noise model of UDiffSE (Nortier, Sadeghi, Serizel, ICASSP 2024) and UDiffSE+
(Ayilo et al., ICASSP 2025): the noise STFT is zero-mean complex Gaussian with
variance ``V = W H`` (``W`` (F, K) spectral patterns, ``H`` (K, T) activations, rank
``K``), fitted to a power spectrogram ``V_m`` (F, T) by minimising the Itakura-Saito
divergence ``D(V_m | V) = sum V_m / V - log(V_m / V) - 1`` — the maximum-likelihood
criterion for that Gaussian model (Fevotte, Bertin, Durrieu, Neural Computation 2009).

Multiplicative updates (Fevotte & Idier, Neural Computation 2011, beta = 0)::

    H <- H * [W^T (V_m V^-2) / W^T V^-1]^gamma
    W <- W * [(V_m V^-2) H^T / V^-1 H^T]^gamma

with ``gamma = 1`` (the usual heuristic updates, used by UDiffSE; default) or
``gamma = 1/2`` (the majorisation-minimisation form, provably non-increasing).
After each ``W`` update its columns are normalised to sum to 1 and the scale moved
into ``H`` (``W H`` unchanged); ``W``, ``H`` and ``V_m`` are floored at ``1e-10``.

Robust updates (``NMF(..., clip=c)``, our option): before every update the target is
clipped to ``min(V_m, c W H)``, a winsorised IS fit. In UDiffSE the target is the
residual ``|X - S|^2`` of a speech estimate; speech left in it sits in a few bins of a
frame at many times the noise level, and the plain update (a weighted mean of
``V_m / V``) follows it, so the noise model absorbs the speech. Capped, a bin can raise
its model at most ``c``-fold per update; the noise itself (exponential around ``W H``)
is barely biased (``E[min(E, 3)] = 0.95``).

All functions take optional leading batch axes: ``V_m`` (..., F, T), ``W`` (..., F, K),
``H`` (..., K, T). Units: ``V_m`` and ``W H`` are powers of the (compressed,
normalised) STFT, i.e. squared magnitudes.
"""
from __future__ import annotations

import torch

FLOOR = 1e-10


def clipped(V_m: torch.Tensor, V: torch.Tensor, clip: float | None) -> torch.Tensor:
    """The target of a robust update (module docstring): ``min(V_m, clip * V)``, or ``V_m``
    for ``clip`` None; ``V`` is the current model ``W H``."""
    return V_m if clip is None else torch.minimum(V_m, clip * V)


def is_divergence(V_m: torch.Tensor, V: torch.Tensor, floor: float = FLOOR) -> torch.Tensor:
    """Itakura-Saito divergence ``D(V_m | V)`` summed over the last two axes -> (...,)."""
    r = V_m.clamp_min(floor) / V.clamp_min(torch.finfo(V.dtype).tiny)
    return (r - torch.log(r) - 1.0).sum(dim=(-2, -1))


def normalise(W: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale the columns of ``W`` to sum to 1 and ``H``'s rows inversely (``W H`` kept)."""
    scale = W.sum(dim=-2, keepdim=True).clamp_min(FLOOR)          # (..., 1, K)
    return W / scale, H * scale.transpose(-2, -1)                  # (..., K, 1)


def _ratios(V_m: torch.Tensor, W: torch.Tensor, H: torch.Tensor, floor: float):
    """``(V_m / V^2, 1 / V)`` with ``V = W H``; ``V_m`` floored, ``V`` only guarded."""
    V = (W @ H).clamp_min(torch.finfo(W.dtype).tiny)
    return (V_m.clamp_min(floor) / V) / V, 1.0 / V


def update_H(V_m: torch.Tensor, W: torch.Tensor, H: torch.Tensor, gamma: float = 1.0,
             floor: float = FLOOR) -> torch.Tensor:
    """One IS multiplicative update of the activations ``H`` (..., K, T)."""
    num_m, inv = _ratios(V_m, W, H, floor)
    Wt = W.transpose(-2, -1)
    ratio = (Wt @ num_m) / (Wt @ inv).clamp_min(floor)
    return (H * ratio.pow(gamma)).clamp_min(floor)


def update_W(V_m: torch.Tensor, W: torch.Tensor, H: torch.Tensor, gamma: float = 1.0,
             floor: float = FLOOR) -> tuple[torch.Tensor, torch.Tensor]:
    """One IS multiplicative update of ``W`` then column normalisation.

    Returns ``(W, H)``: ``W`` (..., F, K) with unit column sums and ``H`` (..., K, T)
    rescaled so that ``W H`` equals the product right after the update.
    """
    num_m, inv = _ratios(V_m, W, H, floor)
    Ht = H.transpose(-2, -1)
    ratio = (num_m @ Ht) / (inv @ Ht).clamp_min(floor)
    W = (W * ratio.pow(gamma)).clamp_min(floor)
    return normalise(W, H)


def init_nmf(n_freq: int, n_frames: int, rank: int, generator: torch.Generator | None = None,
             batch_shape: tuple = (), target_power: float | torch.Tensor | None = None,
             device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Random non-negative ``W`` (..., F, K), ``H`` (..., K, T) with unit-sum columns of W.

    Entries are uniform in (0, 1] (floored) drawn from ``generator``; if
    ``target_power`` is given, ``H`` is scaled so that ``mean(W H)`` equals it (a
    data-driven scale for a random shape).
    """
    if rank < 1 or n_freq < 1 or n_frames < 1:
        raise ValueError(f"bad NMF size F={n_freq} T={n_frames} K={rank}")
    W = torch.rand(tuple(batch_shape) + (n_freq, rank), generator=generator, device=device,
                   dtype=dtype).clamp_min(FLOOR)
    H = torch.rand(tuple(batch_shape) + (rank, n_frames), generator=generator, device=device,
                   dtype=dtype).clamp_min(FLOOR)
    W, H = normalise(W, H)
    if target_power is not None:
        cur = (W @ H).mean(dim=(-2, -1), keepdim=True)
        tp = torch.as_tensor(target_power, dtype=dtype, device=H.device)
        tp = tp.reshape(tp.shape + (1,) * (2 - min(tp.dim(), 2))) if tp.dim() < 2 else tp
        H = (H * tp.clamp_min(FLOOR) / cur).clamp_min(FLOOR)
    return W, H


class NMF:
    """Mutable IS-NMF state ``V = W H`` with in-place updates.

    ``NMF(W, H, gamma=1.0)``; :meth:`variance` -> ``W H`` (..., F, T) floored;
    :meth:`update` applies ``n_iter`` rounds of (update W, normalise, update H) and
    returns the divergence ``D(V_m | W H)`` afterwards.
    """

    def __init__(self, W: torch.Tensor, H: torch.Tensor, gamma: float = 1.0, clip: float | None = None):
        if clip is not None and not float(clip) > 1.0:
            raise ValueError(f"NMF clip must be > 1 (a multiple of the model variance), got {clip}")
        self.W, self.H, self.gamma = W, H, float(gamma)
        self.clip = None if clip is None else float(clip)

    def target(self, V_m: torch.Tensor) -> torch.Tensor:
        """``V_m`` as the next update sees it: with ``clip``, ``min(V_m, clip * W H)``."""
        return V_m if self.clip is None else clipped(V_m, self.variance(), self.clip)

    @classmethod
    def random(cls, n_freq: int, n_frames: int, rank: int, generator=None, gamma: float = 1.0,
               clip: float | None = None, **kw) -> "NMF":
        return cls(*init_nmf(n_freq, n_frames, rank, generator=generator, **kw), gamma=gamma, clip=clip)

    def variance(self) -> torch.Tensor:
        return (self.W @ self.H).clamp_min(FLOOR)

    def update(self, V_m: torch.Tensor, n_iter: int = 1) -> torch.Tensor:
        V_m = V_m.to(self.W.dtype)
        for _ in range(int(n_iter)):
            self.W, self.H = update_W(self.target(V_m), self.W, self.H, self.gamma)
            self.H = update_H(self.target(V_m), self.W, self.H, self.gamma)
        return is_divergence(V_m, self.variance())
