"""Cross-attention fusion of lip embeddings into U-Net feature maps.

``xattn``: the light single-head cross-attention conditioning of AV-UDiffSE (Ayilo,
Sadeghi, Serizel, Alameda-Pineda, ICASSP 2025): queries are the U-Net features of each
spectrogram frame (``h`` averaged over frequency after a GroupNorm), keys and values
the per-video-frame embeddings; the result is added residually. Placement (after the
first conv, every down-sampling, the bottleneck and every decoder level) is decided by
:class:`avse.nets.ncsnpp.NCSNpp`.

Alignment (25 fps video vs 125 frames/s STFT, divided by the level's ``time_stride``):
each spectrogram frame ``t`` has a continuous video position ``u_t`` (the same time
convention as :func:`avse.nets.fusion.align_cond`). It attends only to the
``2 * window + 1`` video frames nearest to ``u_t`` (a local window), and the logits get
a learned relative-time bias ``b(u_t - j)``, piecewise linear in the offset (in video
frames) and initialised to ``-offset^2 / 2`` (the nearest frames first). With it the
attention starts as a soft nearest-frame interpolation and the network learns fine
alignment and lip-audio lead/lag quickly instead of discovering time from content.

Output: ``h + present_t * (A(ctx_t) + B(ctx_t) * GN(h))`` with ``ctx_t`` the attention
result, ``A, B`` zero-initialised linear maps (identity at initialisation), the
``B`` term giving a frequency-dependent, feature-wise modulation. ``present_t`` is 1 when
at least one present video frame lies in the window of ``t``, else 0: missing frames
(``cond_mask`` False) are excluded from the keys, and a frame with no visual evidence
is left exactly unchanged.

``gated_xattn``: the same with the visual contribution scaled per frame by a
lip-reliability score ``r`` in [0, 1] (``cond_rel (B, Tc)``, interpolated to the level's
frames like the features): ``h + r_t * present_t * (...)``. ``r = 0`` everywhere gives
exactly the audio-only computation. Without ``cond_rel`` it behaves as ``xattn``.
"""
import math

import torch
import torch.nn as nn

from avse.errors import InputError
from avse.lips.backends import LIP_FPS
from avse.nets.fusion import FUSIONS, align_cond
from avse.nets.layers import group_norm


def video_positions(T: int, Tc: int, cond_fps: float | None, spec_fps: float, time_stride: int,
                    device=None) -> torch.Tensor:
    """Continuous video-frame index ``u (T,)`` float32 of each frame of a U-Net level
    (``u = j`` at the centre of video frame ``j``)."""
    t = torch.arange(T, device=device, dtype=torch.float64)
    if cond_fps is None:
        u = (t + 0.5) * (Tc / T) - 0.5
    else:
        s = float(time_stride)
        u = (t * s + (s - 1) / 2) / float(spec_fps) * float(cond_fps) - 0.5
    return u.float()


@FUSIONS.register("xattn")
class CrossAttnFusion(nn.Module):
    """Windowed single-head cross-attention with relative-time bias (see module doc).

    ``fusion(h (B, C, F, T), cond (B, Tc, D), cond_mask (B, Tc) bool | None,
    cond_rel (B, Tc) | None) -> (B, C, F, T)``.

    Args:
        channels, cond_dim, time_stride, cond_fps, spec_fps: as every fusion module.
        attn_dim: width of queries/keys/values (default ``min(channels, 64)``).
        window: video frames on each side of the nearest one (default 2: 5 frames,
            200 ms at 25 fps).
    """

    gated = False

    def __init__(self, channels: int, cond_dim: int, cond_fps: float | None = LIP_FPS,
                 spec_fps: float = 125.0, time_stride: int = 1, attn_dim: int | None = None,
                 window: int = 2, **kwargs):
        super().__init__()
        if int(window) < 0:
            raise InputError(f"{type(self).__name__}: window must be >= 0, got {window}")
        self.cond_fps, self.spec_fps, self.time_stride = cond_fps, spec_fps, int(time_stride)
        self.window = int(window)
        a = int(attn_dim or min(channels, 64))
        self.norm_h = group_norm(channels)
        self.norm_c = nn.LayerNorm(cond_dim)
        self.q = nn.Linear(channels, a)
        self.kv = nn.Linear(cond_dim, 2 * a)
        # relative-time bias at integer offsets -(W+1) .. W+1, linearly interpolated
        offs = torch.arange(-(self.window + 1), self.window + 2, dtype=torch.float32)
        self.rel_bias = nn.Parameter(-0.5 * offs ** 2)
        self.out_add = nn.Linear(a, channels)
        self.out_mul = nn.Linear(a, channels)
        for lin in (self.out_add, self.out_mul):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.scale = 1.0 / math.sqrt(a)

    def _bias(self, delta: torch.Tensor) -> torch.Tensor:
        """Piecewise-linear ``b(delta)``, ``delta`` in video frames (clamped to the table)."""
        W = self.window + 1
        x = (delta + W).clamp(0, 2 * W)
        i0 = x.floor().long().clamp(max=2 * W - 1)
        w = x - i0
        return self.rel_bias[i0] * (1 - w) + self.rel_bias[i0 + 1] * w

    def attend(self, h: torch.Tensor, cond: torch.Tensor, cond_mask: torch.Tensor | None):
        """``(ctx (B, T, a), present (B, T))`` for the frames of ``h``."""
        B, C, Fq, T = h.shape
        Tc = cond.shape[1]
        dev, dt = h.device, h.dtype
        hn = self.norm_h(h)
        q = self.q(hn.mean(dim=2).transpose(1, 2))  # (B, T, a)
        k, v = self.kv(self.norm_c(cond.to(dt))).chunk(2, dim=-1)  # (B, Tc, a)
        u = video_positions(T, Tc, self.cond_fps, self.spec_fps, self.time_stride, dev)
        W = self.window
        idx = u.round().long()[:, None] + torch.arange(-W, W + 1, device=dev)[None]  # (T, K)
        valid = (idx >= 0) & (idx < Tc)
        idc = idx.clamp(0, Tc - 1)
        m = (torch.ones(B, Tc, dtype=torch.bool, device=dev) if cond_mask is None
             else cond_mask.to(device=dev, dtype=torch.bool))
        keep = valid[None] & m[:, idc]  # (B, T, K)
        kk, vv = k[:, idc], v[:, idc]  # (B, T, K, a)
        logits = (q[:, :, None, :] * kk).sum(-1) * self.scale + self._bias(u[:, None] - idx.float()).to(dt)
        logits = logits.masked_fill(~keep, float("-inf"))
        present = keep.any(dim=-1)
        attn = torch.softmax(logits.masked_fill(~present[..., None], 0.0), dim=-1)
        attn = attn * keep.to(attn.dtype)  # rows without keys -> 0
        ctx = (attn[..., None] * vv).sum(dim=2)  # (B, T, a)
        return ctx, present.to(dt), hn

    def gate(self, cond_rel: torch.Tensor | None, cond_mask, T: int, dtype) -> torch.Tensor | None:
        return None

    def forward(self, h: torch.Tensor, cond: torch.Tensor, cond_mask: torch.Tensor | None = None,
                cond_rel: torch.Tensor | None = None) -> torch.Tensor:
        ctx, present, hn = self.attend(h, cond, cond_mask)
        g = present
        r = self.gate(cond_rel, cond_mask, h.shape[-1], h.dtype)
        if r is not None:
            g = g * r
        add = self.out_add(ctx).transpose(1, 2)[:, :, None, :]  # (B, C, 1, T)
        mul = self.out_mul(ctx).transpose(1, 2)[:, :, None, :]
        return h + g[:, None, None, :] * (add + mul * hn)


@FUSIONS.register("gated_xattn")
class GatedCrossAttnFusion(CrossAttnFusion):
    """:class:`CrossAttnFusion` scaled per frame by the lip reliability ``r`` in [0, 1]."""

    gated = True

    def gate(self, cond_rel: torch.Tensor | None, cond_mask, T: int, dtype) -> torch.Tensor | None:
        if cond_rel is None:
            return None
        if cond_rel.dim() != 2:
            raise InputError(f"gated_xattn: cond_rel must be (B, Tc), got {tuple(cond_rel.shape)}")
        r, _ = align_cond(cond_rel.to(dtype).clamp(0, 1)[..., None], cond_mask, T, self.cond_fps,
                          self.spec_fps, self.time_stride)
        return r[..., 0]
