"""Linear observation operators for diffusion posterior sampling.

The observation model of every restoration method in :mod:`avse.enhance` is
``y = A(s_1, ..., s_K) + n`` with ``A`` composed from the operators here:

* :class:`Identity` (enhancement: UDiffSE, Nortier et al., ICASSP 2024);
* :class:`Scale`: a per-bin (diagonal) gain;
* :class:`TimeConvolution`: causal convolution of waveforms with a room impulse response
  (informed dereverberation, Lemercier et al., WASPAA 2023);
* :class:`CTFConvolution`: the convolutive-transfer-function (CTF) approximation of a
  room in the STFT domain, a per-frequency convolution along frames (cross-band terms
  dropped); the blind room of BUDDy (Moliner et al., 2024) is one;
* :class:`SourceSum`: the sum over ``K`` sources (separation);
* :class:`Composed`: ``outer(inner(x))``, e.g. ``SourceSum() @ CTFConvolution(H)``.

Every operator is linear and has a :meth:`Operator.forward` and an exact
:meth:`Operator.adjoint` (``<A x, y> = <x, A^H y>``, checked in the tests).
:attr:`Operator.gain` is the diagonal of ``A A^H`` when that matrix is diagonal (a float or
a real tensor broadcastable to the output), else ``None``: the closed-form UDiffSE
likelihood step needs it. All operators work on any device, are differentiable
(autograd) and accept leading batch axes.

Shapes. Spectrogram operators act on ``(..., F, T)`` complex, waveform operators on
``(..., N)`` float; a source axis, when present, is the axis just before those
(``(B, K, F, T)`` or ``(B, K, N)``), and per-source kernels carry it too (``h`` of shape
``(K, L)``, ``H`` of shape ``(K, F, L)``) so that they broadcast.
"""
from __future__ import annotations

import numpy as np
import torch

from avse.errors import InputError


def _next_fast(n: int) -> int:
    """A length >= ``n`` that is a power of two (FFT friendly)."""
    return 1 << max(0, int(n - 1).bit_length())


class Operator:
    """A linear operator ``A``; subclasses implement :meth:`forward` and :meth:`adjoint`."""

    gain = None  # diagonal of A A^H (float or real tensor) when diagonal, else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def __matmul__(self, inner: "Operator") -> "Composed":
        return Composed(self, inner)


class Identity(Operator):
    """``A x = x``; gain 1."""

    gain = 1.0

    def forward(self, x):
        return x

    def adjoint(self, y):
        return y


class Scale(Operator):
    """``A x = w x`` with ``w`` a complex or real tensor (or float) broadcastable to ``x``;
    gain ``|w|^2``."""

    def __init__(self, w):
        self.w = torch.as_tensor(w)

    @property
    def gain(self):
        return self.w.abs().pow(2)

    def forward(self, x):
        return self.w.to(x.device) * x

    def adjoint(self, y):
        w = self.w.to(y.device)
        return (w.conj() if w.is_complex() else w) * y


class SourceSum(Operator):
    """Sum over the source axis ``dim`` (``-3`` for ``(B, K, F, T)`` spectrograms, ``-2``
    for ``(B, K, N)`` waveforms); adjoint: copy to every source. ``A A^H = K I``."""

    def __init__(self, n_sources: int, dim: int = -3):
        if int(n_sources) < 1:
            raise InputError(f"SourceSum: need n_sources >= 1, got {n_sources}")
        self.n_sources, self.dim = int(n_sources), int(dim)

    @property
    def gain(self):
        return float(self.n_sources)

    def forward(self, x):
        if x.shape[self.dim] != self.n_sources:
            raise InputError(f"SourceSum: expected {self.n_sources} sources on axis {self.dim}, "
                             f"got shape {tuple(x.shape)}")
        return x.sum(self.dim)

    def adjoint(self, y):
        y = y.unsqueeze(self.dim)
        shape = list(y.shape)
        shape[self.dim] = self.n_sources
        return y.expand(shape)


class TimeConvolution(Operator):
    """Causal convolution of waveforms ``(..., N)`` with ``h`` (``(L,)`` or ``(K, L)``
    float, samples at the signal's rate), truncated to the input length:
    ``y[n] = sum_m h[m] x[n - m]`` for ``0 <= n < N``. Adjoint: the time-reversed
    correlation. FFT based. Not diagonal (gain ``None``)."""

    def __init__(self, h):
        h = torch.as_tensor(np.asarray(h) if not torch.is_tensor(h) else h)
        if h.dim() not in (1, 2) or h.shape[-1] < 1 or h.is_complex():
            raise InputError(f"TimeConvolution: h must be real (L,) or (K, L), got {tuple(h.shape)}")
        self.h = h

    def _spec(self, n_fft, ref):
        return torch.fft.rfft(self.h.to(device=ref.device, dtype=ref.dtype), n_fft)

    def forward(self, x):
        N = x.shape[-1]
        n = _next_fast(N + self.h.shape[-1] - 1)
        return torch.fft.irfft(torch.fft.rfft(x, n) * self._spec(n, x), n)[..., :N]

    def adjoint(self, y):
        N = y.shape[-1]
        n = _next_fast(N + self.h.shape[-1] - 1)
        return torch.fft.irfft(torch.fft.rfft(y, n) * self._spec(n, y).conj(), n)[..., :N]


class CTFConvolution(Operator):
    """Convolutive transfer function: per-frequency convolution along frames,
    ``Y[f, t] = sum_l H[f, l] X[f, t - l]`` for ``0 <= t < T`` (causal, truncated).

    ``H``: complex ``(F, L)`` or ``(K, F, L)`` (one filter per source), ``L`` frames
    (``l = 0`` is the frame of the direct path). ``H`` may be a tensor that requires
    grad (the blind room of :mod:`avse.enhance.buddy`). Not diagonal (gain ``None``)
    unless ``L = 1``."""

    def __init__(self, H: torch.Tensor):
        if not torch.is_tensor(H) or not H.is_complex() or H.dim() not in (2, 3):
            raise InputError(f"CTFConvolution: H must be complex (F, L) or (K, F, L), got "
                             f"{getattr(H, 'dtype', type(H))} {tuple(getattr(H, 'shape', ()))}")
        self.H = H

    @property
    def gain(self):
        return self.H[..., 0].abs().pow(2).unsqueeze(-1) if self.H.shape[-1] == 1 else None

    def _spec(self, n, ref):
        return torch.fft.fft(self.H.to(device=ref.device, dtype=ref.dtype), n)

    def forward(self, x):
        T = x.shape[-1]
        n = _next_fast(T + self.H.shape[-1] - 1)
        return torch.fft.ifft(torch.fft.fft(x, n) * self._spec(n, x), n)[..., :T]

    def adjoint(self, y):
        T = y.shape[-1]
        n = _next_fast(T + self.H.shape[-1] - 1)
        return torch.fft.ifft(torch.fft.fft(y, n) * self._spec(n, y).conj(), n)[..., :T]


class Composed(Operator):
    """``A = outer o inner``; adjoint ``inner^H o outer^H``. Diagonal gain when ``inner``
    has a scalar gain and ``outer`` any (their product), or ``inner`` a diagonal gain
    ``D`` and ``outer`` a :class:`SourceSum` (``sum_k D_k``)."""

    def __init__(self, outer: Operator, inner: Operator):
        self.outer, self.inner = outer, inner

    @property
    def gain(self):
        gi, go = self.inner.gain, self.outer.gain
        if go is None or gi is None:
            return None
        if isinstance(gi, float):
            return go * gi
        if isinstance(self.outer, SourceSum):  # sum_k D_k, D shared or per source
            d, K = self.outer.dim, self.outer.n_sources
            return gi.sum(d) if gi.dim() >= -d and gi.shape[d] == K else K * gi
        return None

    def forward(self, x):
        return self.outer.forward(self.inner.forward(x))

    def adjoint(self, y):
        return self.inner.adjoint(self.outer.adjoint(y))


def _bandlimited_value(h: np.ndarray, t: float, half: int = 64) -> float:
    """``h`` at the real time ``t`` (samples) by sinc interpolation over +-``half`` taps."""
    n = np.arange(max(0, int(np.floor(t)) - half), min(h.size, int(np.floor(t)) + half + 1))
    return float(np.sum(h[n] * np.sinc(t - n)))


def relative_rir(h, fractional: bool = True, resolution: float = 0.01) -> np.ndarray:
    """Room impulse response relative to its direct path, ``h(tau + n) / h(tau)`` for
    ``n >= 0``, with ``tau`` the direct-path delay.

    The simulation (:mod:`avse.simulate.mix`) writes the target as the dry source through
    the direct path only (a fractional-delay sinc), so convolving that target with the
    returned filter gives the reverberant image. ``tau``: the time of the band-limited
    maximum of ``|h|`` within one sample of ``argmax |h|`` (``resolution`` samples; the
    direct path of a source within about 2 m is the strongest arrival), the advance done
    by a frequency-domain phase shift; ``fractional=False``: ``tau = argmax |h|``
    (integer). ``h``: ``(L,)`` or ``(M, L)`` (microphone 0 is used). Returns float32
    ``(L - floor(tau),)``.
    """
    h = np.asarray(h, dtype=np.float64)
    if h.ndim == 2:
        h = h[0]
    if h.ndim != 1 or h.size == 0 or not np.all(np.isfinite(h)) or not np.any(h):
        raise InputError(f"relative_rir: need a finite, non-zero (L,) or (M, L) RIR, got {h.shape}")
    n0 = int(np.argmax(np.abs(h)))
    if not fractional:
        return (h[n0:] / h[n0]).astype(np.float32)
    grid = np.arange(max(0.0, n0 - 1.0), min(h.size - 1.0, n0 + 1.0) + 1e-9, resolution)
    vals = np.array([_bandlimited_value(h, t) for t in grid])
    tau = float(grid[int(np.argmax(np.abs(vals)))])
    n_fft = 1 << int(2 * h.size - 1).bit_length()
    w = 2 * np.pi * np.arange(n_fft // 2 + 1) / n_fft
    adv = np.fft.irfft(np.fft.rfft(h, n_fft) * np.exp(1j * w * tau), n_fft)[:h.size - int(tau)]
    return (adv / _bandlimited_value(h, tau)).astype(np.float32)
