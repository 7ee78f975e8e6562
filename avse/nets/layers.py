"""Building blocks of the NCSN++ score network (Song et al., ICLR 2021).

Written from the paper's description: Gaussian Fourier-feature time embedding,
BigGAN-style residual blocks with time-embedding injection and ``1/sqrt(2)`` skip
rescaling, anti-aliased FIR ``[1, 3, 3, 1]`` resampling, and single-head spatial
self-attention. Feature maps are ``(B, C, H, W)`` real tensors; for spectrograms
``H = F`` (frequency bins) and ``W = T`` (frames).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SQRT_HALF = 1.0 / math.sqrt(2.0)


def group_norm(channels: int, eps: float = 1e-6) -> nn.GroupNorm:
    """GroupNorm with ``min(channels // 4, 32)`` groups (NCSN++ convention), lowered to
    the nearest divisor of ``channels``."""
    g = max(1, min(channels // 4, 32))
    while channels % g:
        g -= 1
    return nn.GroupNorm(num_groups=g, num_channels=channels, eps=eps)


def conv3x3(c_in: int, c_out: int, init_scale: float = 1.0) -> nn.Conv2d:
    """3x3 'same' convolution; ``init_scale`` multiplies the default initial weights."""
    conv = nn.Conv2d(c_in, c_out, 3, padding=1)
    _scale_init(conv, init_scale)
    return conv


def conv1x1(c_in: int, c_out: int, init_scale: float = 1.0) -> nn.Conv2d:
    """1x1 convolution (a per-position linear map, 'NIN' in NCSN++)."""
    conv = nn.Conv2d(c_in, c_out, 1)
    _scale_init(conv, init_scale)
    return conv


def _scale_init(m: nn.Module, scale: float) -> None:
    if scale != 1.0:
        with torch.no_grad():
            m.weight.mul_(scale)
            if m.bias is not None:
                m.bias.zero_()


class GaussianFourierProjection(nn.Module):
    """Random Fourier features of a scalar time: ``t (B,) -> (B, 2 * embedding_size)``.

    ``[sin(2 pi t W), cos(2 pi t W)]`` with fixed ``W ~ N(0, scale^2)``; ``W`` is a
    persistent buffer (saved in checkpoints, never trained).
    """

    def __init__(self, embedding_size: int = 128, scale: float = 16.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("W", torch.randn(embedding_size, generator=g) * scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        proj = 2 * math.pi * t[:, None].to(self.W.dtype) * self.W[None, :]
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


class TimeEmbedding(nn.Module):
    """Fourier features + 2-layer MLP: ``t (B,) in [0, 1] -> (B, 4 * nf)``."""

    def __init__(self, nf: int, fourier_scale: float = 16.0, dim: int | None = None):
        super().__init__()
        self.dim = dim or 4 * nf
        self.fourier = GaussianFourierProjection(nf, fourier_scale)
        self.lin1 = nn.Linear(2 * nf, self.dim)
        self.lin2 = nn.Linear(self.dim, self.dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.lin2(F.silu(self.lin1(self.fourier(t))))


def _fir2d(kernel) -> torch.Tensor:
    k = torch.as_tensor(kernel, dtype=torch.float32)
    k2 = torch.outer(k, k)
    return k2 / k2.sum()


class FirDown(nn.Module):
    """Anti-aliased 2x down-sampling: separable FIR low-pass + stride 2.

    ``(B, C, H, W) -> (B, C, H/2, W/2)`` (H, W even); optional 3x3 conv after it.
    """

    def __init__(self, channels: int | None = None, kernel=(1, 3, 3, 1), with_conv: bool = False):
        super().__init__()
        k = _fir2d(kernel)
        if k.shape[-1] % 2:
            raise ValueError("FIR resampling kernel needs an even length")
        self.pad = (k.shape[-1] - 2) // 2
        self.register_buffer("k", k[None, None], persistent=False)
        self.conv = conv3x3(channels, channels) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C = x.shape[1]
        w = self.k.to(x.dtype).expand(C, 1, -1, -1)
        x = F.conv2d(x, w, stride=2, padding=self.pad, groups=C)
        return self.conv(x) if self.conv is not None else x


class FirUp(nn.Module):
    """Anti-aliased 2x up-sampling: zero insertion + FIR interpolation (gain 4).

    ``(B, C, H, W) -> (B, C, 2H, 2W)``; optional 3x3 conv after it.
    """

    def __init__(self, channels: int | None = None, kernel=(1, 3, 3, 1), with_conv: bool = False):
        super().__init__()
        k = _fir2d(kernel) * 4
        if k.shape[-1] % 2:
            raise ValueError("FIR resampling kernel needs an even length")
        self.pad = (k.shape[-1] - 2) // 2
        self.register_buffer("k", k[None, None], persistent=False)
        self.conv = conv3x3(channels, channels) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C = x.shape[1]
        w = self.k.to(x.dtype).expand(C, 1, -1, -1)
        x = F.conv_transpose2d(x, w, stride=2, padding=self.pad, groups=C)
        return self.conv(x) if self.conv is not None else x


class ResBlockBigGAN(nn.Module):
    """BigGAN-style residual block with optional FIR up/down-sampling.

    ``h = Conv(Drop(SiLU(GN(Conv(Resample(SiLU(GN(x)))) + Dense(SiLU(temb))))))``;
    the skip path is resampled and projected by a 1x1 conv when the channel count or
    the resolution changes; output ``(skip + h) / sqrt(2)`` (or ``skip + h``).

    Shapes: ``x (B, c_in, H, W)``, ``temb (B, temb_dim)`` -> ``(B, c_out, H', W')``
    with ``H' = 2H / H / H/2`` for ``up`` / neither / ``down``.
    """

    def __init__(self, c_in: int, c_out: int | None = None, temb_dim: int | None = None,
                 up: bool = False, down: bool = False, dropout: float = 0.0,
                 fir_kernel=(1, 3, 3, 1), skip_rescale: bool = True, init_scale: float = 1.0):
        super().__init__()
        if up and down:
            raise ValueError("a block cannot both up- and down-sample")
        c_out = c_out or c_in
        self.norm0 = group_norm(c_in)
        self.resample = FirUp(kernel=fir_kernel) if up else FirDown(kernel=fir_kernel) if down else None
        self.conv0 = conv3x3(c_in, c_out)
        self.dense = nn.Linear(temb_dim, c_out) if temb_dim else None
        self.norm1 = group_norm(c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = conv3x3(c_out, c_out, init_scale=init_scale)
        self.skip = conv1x1(c_in, c_out) if (c_in != c_out or up or down) else None
        self.scale = SQRT_HALF if skip_rescale else 1.0

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = F.silu(self.norm0(x))
        if self.resample is not None:
            h, x = self.resample(h), self.resample(x)
        h = self.conv0(h)
        if self.dense is not None and temb is not None:
            h = h + self.dense(F.silu(temb))[:, :, None, None]
        h = self.conv1(self.dropout(F.silu(self.norm1(h))))
        if self.skip is not None:
            x = self.skip(x)
        return (x + h) * self.scale


class AttnBlock(nn.Module):
    """Single-head self-attention over all ``H * W`` positions, residual.

    ``(B, C, H, W) -> (B, C, H, W)``; output ``(x + Attn(GN(x))) / sqrt(2)``.
    """

    def __init__(self, channels: int, skip_rescale: bool = True, init_scale: float = 1.0):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = conv1x1(channels, 3 * channels)
        self.out = conv1x1(channels, channels, init_scale=init_scale)
        self.scale = SQRT_HALF if skip_rescale else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(-1, -2).unbind(1)
        h = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        h = self.out(h.transpose(-1, -2).reshape(B, C, H, W))
        return (x + h) * self.scale
