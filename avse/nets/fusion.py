"""Fusion of per-video-frame conditioning into U-Net feature maps.

Every fusion module is built as ``FUSIONS.build(name, channels=C, cond_dim=D,
time_stride=s, n_freq=F_l, **fusion_conf)`` (unknown keyword arguments are accepted
and ignored, so the network can pass the same context to every kind) and called as

    fusion(h: (B, C, F, T), cond: (B, Tc, D), cond_mask: (B, Tc) bool | None,
           cond_rel: (B, Tc) float in [0, 1] | None) -> (B, C, F, T)

returning ``h + delta``: the residual addition happens inside the module, and a module
at initialisation returns ``h`` unchanged (zero-initialised output projection).
``cond_rel`` is a per-video-frame lip-reliability score; only the gated modules use it.
Kinds: ``concat`` (here), ``xattn`` and ``gated_xattn`` (:mod:`avse.nets.fusion_xattn`).

Time alignment: video runs at ``cond_fps`` (25) frames/s, the STFT at ``spec_fps``
(16000 / 128 = 125) frames/s, and a U-Net level whose time axis was down-sampled
``time_stride`` times sees ``spec_fps / time_stride`` frames/s. Video frame ``j`` is
taken to represent time ``(j + 0.5) / cond_fps``; spectrogram frame ``t`` (centred
STFT) time ``(t * s + (s - 1) / 2) / spec_fps``. Frames past the end of the video (e.g.
:meth:`SpectralFrontEnd.pad_frames` padding) get no conditioning. With
``cond_fps=None`` the video is instead stretched over the whole spectrogram.
"""
import torch
import torch.nn as nn

from avse.errors import InputError
from avse.lips.backends import LIP_FPS
from avse.utils.registry import Registry

FUSIONS = Registry("fusion")


def align_cond(cond: torch.Tensor, cond_mask: torch.Tensor | None, T: int,
               cond_fps: float | None = LIP_FPS, spec_fps: float = 125.0,
               time_stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Linearly interpolate video-frame features onto ``T`` spectrogram frames.

    Args:
        cond: ``(B, Tc, D)`` float per-video-frame features.
        cond_mask: ``(B, Tc)`` bool, True where the frame is present (None: all).
        T: number of frames at the current U-Net level.
    Returns:
        ``feat (B, T, D)``: interpolation of ``cond * mask`` (missing frames count as
        zero, so their values never reach the output); ``present (B, T)`` float in
        [0, 1]: the interpolated mask (0 outside the video).
    """
    B, Tc, D = cond.shape
    dev = cond.device
    if cond_mask is not None and tuple(cond_mask.shape) != (B, Tc):
        raise InputError(f"cond_mask {tuple(cond_mask.shape)} does not match cond {tuple(cond.shape)}")
    m = (torch.ones(B, Tc, device=dev, dtype=cond.dtype) if cond_mask is None
         else cond_mask.to(device=dev, dtype=cond.dtype))
    cz = torch.where(m[..., None] > 0, cond, torch.zeros((), dtype=cond.dtype, device=dev))
    t = torch.arange(T, device=dev, dtype=torch.float64)
    if cond_fps is None:
        u = (t + 0.5) * (Tc / T) - 0.5
    else:
        s = float(time_stride)
        u = (t * s + (s - 1) / 2) / float(spec_fps) * float(cond_fps) - 0.5
    inside = ((u >= -0.5) & (u <= Tc - 0.5)).to(cond.dtype)
    u = u.clamp(0, Tc - 1)
    j0 = u.floor().long()
    j1 = (j0 + 1).clamp(max=Tc - 1)
    w = (u - j0).to(cond.dtype)
    feat = (cz[:, j0] * (1 - w)[:, None] + cz[:, j1] * w[:, None]) * inside[:, None]
    present = (m[:, j0] * (1 - w) + m[:, j1] * w) * inside
    return feat, present


def model_frame_rates(model: nn.Module) -> tuple[float | None, float] | None:
    """``(cond_fps, spec_fps)`` of the first module of ``model`` that aligns video to STFT
    frames (a fusion module or a lip-variance head; ``cond_fps`` None: aligned by length),
    or None when it has none."""
    for m in model.modules():
        if hasattr(m, "spec_fps") and hasattr(m, "cond_fps"):
            return (None if m.cond_fps is None else float(m.cond_fps)), float(m.spec_fps)
    return None


@FUSIONS.register("concat")
class ConcatFusion(nn.Module):
    """Frame-aligned additive conditioning ("concat" then 1x1 projection).

    The aligned features and the presence indicator ``[feat, present]`` ``(B, T, D+1)``
    are projected to ``C`` channels by a zero-initialised linear layer and added to
    every frequency row: ``h + proj(...)[:, :, None, :]``.
    """

    def __init__(self, channels: int, cond_dim: int, cond_fps: float | None = LIP_FPS,
                 spec_fps: float = 125.0, time_stride: int = 1, **kwargs):
        super().__init__()
        self.cond_fps, self.spec_fps, self.time_stride = cond_fps, spec_fps, int(time_stride)
        self.proj = nn.Linear(cond_dim + 1, channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor, cond_mask: torch.Tensor | None = None,
                cond_rel: torch.Tensor | None = None) -> torch.Tensor:
        feat, present = align_cond(cond.to(h.dtype), cond_mask, h.shape[-1], self.cond_fps,
                                   self.spec_fps, self.time_stride)
        delta = self.proj(torch.cat([feat, present[..., None]], dim=-1))  # (B, T, C)
        return h + delta.transpose(1, 2)[:, :, None, :]
