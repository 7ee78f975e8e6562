"""Spectral front-end: STFT, amplitude compression and frame padding.

The representation every diffusion model of this toolkit works on (SGMSE+, Richter et
al. 2023; UDiffSE, Nortier et al. 2024): a centred STFT of 16 kHz audio with a
periodic Hann window, ``n_fft = 510`` (``F = 256`` bins) and ``hop = 128`` (8 ms, 125
frames/s), followed by a per-bin amplitude compression
``c -> beta * |c|^alpha * exp(i angle c)`` (``alpha = 0.5``, ``beta = 0.15``).

Shapes: waveforms ``(..., N)`` float (any leading batch dims, kept as they are; a 1-D
``(N,)`` input gives a ``(F, T)`` spectrogram); spectrograms ``(..., F, T)`` complex.
All methods work on any device and for float32/float64 (complex64/complex128).
The STFT is not normalised (``torch.stft`` default): a unit-amplitude sinusoid has a
peak bin magnitude of about ``sum(window) / 2 = 127.5``.
"""
from typing import Tuple

import torch
import torch.nn.functional as F

from avse.errors import InputError

# Magnitudes below this are treated as zero-ish for the power law: the scaling factor
# |x|^(p-1) is evaluated at max(|x|, _EPS), so zero maps to zero with finite gradients.
_EPS = 1e-12


def powlaw(x: torch.Tensor, p: float, eps: float = _EPS) -> torch.Tensor:
    """``|x|^p * exp(i angle x)`` computed as ``x * max(|x|, eps)^(p - 1)``.

    Exact for ``|x| >= eps``, zero at zero, never NaN (also in the gradient).
    """
    if p == 1.0:
        return x
    mag = x.abs().clamp_min(eps)
    return x * mag.pow(p - 1.0)


class SpectralFrontEnd:
    """STFT + amplitude compression + frame padding for the diffusion models.

    Args:
        n_fft: FFT size in samples (510 -> 256 frequency bins).
        hop: hop size in samples (128 -> 8 ms at 16 kHz).
        window: ``'hann'`` (periodic) or ``'sqrthann'`` (periodic, sqrt of Hann).
        center: centre frames (pad ``n_fft // 2`` reflected samples on both sides).
        alpha, beta: compression exponent and gain; ``alpha = 1, beta = 1`` disables it.
        pad_multiple: :meth:`pad_frames` pads the frame axis to a multiple of this
            (the U-Net's total down-sampling factor).
    """

    def __init__(self, n_fft: int = 510, hop: int = 128, window: str = "hann",
                 center: bool = True, alpha: float = 0.5, beta: float = 0.15,
                 pad_multiple: int = 64):
        if n_fft <= 0 or hop <= 0 or hop > n_fft:
            raise InputError(f"SpectralFrontEnd: need 0 < hop <= n_fft, got n_fft={n_fft} hop={hop}")
        if window not in ("hann", "sqrthann"):
            raise InputError(f"SpectralFrontEnd: unknown window {window!r}; choose from: hann, sqrthann")
        if not (alpha > 0 and beta > 0):
            raise InputError(f"SpectralFrontEnd: need alpha > 0 and beta > 0, got {alpha}, {beta}")
        if pad_multiple < 1:
            raise InputError(f"SpectralFrontEnd: pad_multiple must be >= 1, got {pad_multiple}")
        self.n_fft, self.hop, self.window_type, self.center = int(n_fft), int(hop), window, bool(center)
        self.alpha, self.beta, self.pad_multiple = float(alpha), float(beta), int(pad_multiple)
        self._win_cache = {}

    @property
    def n_freq(self) -> int:
        """Number of frequency bins ``F = n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    def config(self) -> dict:
        """Constructor arguments (to store next to a model)."""
        return dict(n_fft=self.n_fft, hop=self.hop, window=self.window_type, center=self.center,
                    alpha=self.alpha, beta=self.beta, pad_multiple=self.pad_multiple)

    def window(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """The analysis/synthesis window ``(n_fft,)`` on ``device`` in ``dtype`` (cached)."""
        key = (str(device), dtype)
        w = self._win_cache.get(key)
        if w is None:
            w = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float64)
            if self.window_type == "sqrthann":
                w = w.sqrt()
            w = w.to(device=device, dtype=dtype)
            self._win_cache[key] = w
        return w

    def n_frames(self, n_samples: int) -> int:
        """Frames produced by :meth:`stft` for ``n_samples`` samples."""
        if self.center:
            return n_samples // self.hop + 1
        return max(0, (n_samples - self.n_fft) // self.hop + 1)

    # ---------------------------------------------------------------- STFT
    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., N)`` float waveform -> ``(..., F, T)`` complex spectrogram."""
        if not torch.is_tensor(x):
            x = torch.as_tensor(x)
        if x.is_complex() or x.dim() < 1:
            raise InputError(f"stft: expected a real (..., N) waveform, got {tuple(x.shape)} {x.dtype}")
        if not x.is_floating_point():
            x = x.float()
        if self.center and x.shape[-1] <= self.n_fft // 2:
            raise InputError(f"stft: signal of {x.shape[-1]} samples is too short for "
                             f"n_fft={self.n_fft} with reflect padding")
        lead = x.shape[:-1]
        X = torch.stft(x.reshape(-1, x.shape[-1]), n_fft=self.n_fft, hop_length=self.hop,
                       window=self.window(x.device, x.dtype), center=self.center,
                       pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
        return X.reshape(*lead, *X.shape[-2:])

    def istft(self, X: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """``(..., F, T)`` complex -> ``(..., length)`` float waveform (overlap-add)."""
        if not X.is_complex() or X.dim() < 2 or X.shape[-2] != self.n_freq:
            raise InputError(f"istft: expected a complex (..., {self.n_freq}, T) spectrogram, "
                             f"got {tuple(X.shape)} {X.dtype}")
        lead = X.shape[:-2]
        rdtype = X.real.dtype
        x = torch.istft(X.reshape(-1, *X.shape[-2:]), n_fft=self.n_fft, hop_length=self.hop,
                        window=self.window(X.device, rdtype), center=self.center,
                        normalized=False, onesided=True, length=length, return_complex=False)
        return x.reshape(*lead, x.shape[-1])

    # --------------------------------------------------------- compression
    def compress(self, X: torch.Tensor) -> torch.Tensor:
        """``beta * |X|^alpha * exp(i angle X)``, same shape and dtype; zero-safe."""
        return self.beta * powlaw(X, self.alpha)

    def decompress(self, C: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`compress`: ``(|C| / beta)^(1/alpha) * exp(i angle C)``."""
        return powlaw(C / self.beta, 1.0 / self.alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveform ``(..., N)`` -> compressed spectrogram ``(..., F, T)`` complex."""
        return self.compress(self.stft(x))

    __call__ = forward

    def inverse(self, C: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Compressed spectrogram ``(..., F, T)`` -> waveform ``(..., length)``."""
        return self.istft(self.decompress(C), length)

    # ------------------------------------------------------------- padding
    def pad_frames(self, C: torch.Tensor, multiple: int | None = None) -> Tuple[torch.Tensor, int]:
        """Zero-pad the last (frame) axis on the right to a multiple of ``pad_multiple``.

        Returns ``(C_padded (..., F, T_pad), T_orig)``; undo with :meth:`crop_frames`.
        """
        m = int(multiple or self.pad_multiple)
        T = C.shape[-1]
        extra = (-T) % m
        if extra == 0:
            return C, T
        if C.is_complex():  # F.pad has no complex support on every backend
            return torch.complex(F.pad(C.real, (0, extra)), F.pad(C.imag, (0, extra))), T
        return F.pad(C, (0, extra)), T

    @staticmethod
    def crop_frames(C: torch.Tensor, T_orig: int) -> torch.Tensor:
        """Exact inverse of :meth:`pad_frames`: keep the first ``T_orig`` frames."""
        if T_orig > C.shape[-1]:
            raise InputError(f"crop_frames: T_orig={T_orig} exceeds {C.shape[-1]} frames")
        return C[..., :T_orig]
