"""Lip-informed speech variance: the Gaussian part of an audio-visual prior.

The score model's ``gaussian`` preconditioning (:mod:`avse.nets.score_model`) writes the
network output as the exact denoiser of zero-mean Gaussian speech of standard deviation
``sigma_d`` plus a learned residual. With a constant ``sigma_d`` that Gaussian knows
nothing of the utterance. :class:`LipVariance` predicts ``sigma_d (B, F, T)`` per
time-frequency bin from the lip embeddings, so the Gaussian part becomes a lip-conditioned
spectral-envelope model: silence where the mouth is closed, the formant regions of the
viseme being shown. This is the conditional Gaussian prior of the audio-visual VAE line
(Sadeghi, Leglaive, Alameda-Pineda, Girin, Horaud, "Audio-visual speech enhancement
using conditional variational auto-encoders", IEEE/ACM TASLP 2020: ``p(s | z, v) =
N_c(0, sigma^2(z, v))``) placed under the diffusion prior's residual network (the
preconditioning of Karras et al., "Elucidating the design space of diffusion-based
generative models", NeurIPS 2022, with a per-bin data variance).

It gives the lips a direct, linear path to the denoiser. Through the fusion modules
alone, a CPU-sized prior learns only the presence of video, not what the lips say
(:mod:`avse.train.lip_usage`); the variance path is trained by the same
denoising loss from the first step.

Shapes: ``LipVariance(cond (B, Tc, D), cond_mask (B, Tc) bool | None, cond_rel (B, Tc) |
None, n_freq F, n_frames T) -> log sigma_d (B, F, T)`` (natural log, compressed-
spectrogram units). The envelope is predicted on ``bands`` equal-width frequency bands
and linearly interpolated to the ``F`` bins, so it does not depend on the STFT size.
Frames without video (``cond_mask`` False, past the end, or ``cond=None``) get the
learned per-band profile ``base`` alone: an unconditional spectral envelope. With
``gated`` the lip-dependent part is scaled per frame by the lip reliability (as
``gated_xattn`` scales its fusion). The lip-dependent output layer starts at zero, so an
untrained head is the constant ``sigma_data`` of the audio-only model.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from avse.errors import InputError
from avse.lips.backends import LIP_FPS
from avse.nets.fusion import align_cond

RESIDUALS = ("lip", "constant")


class LipVariance(nn.Module):
    """Per-bin speech standard deviation from lip embeddings (module docstring).

    Args:
        cond_dim: size of the lip embeddings ``D``.
        sigma_data: the constant it starts from (the audio-only model's ``sigma_data``).
        bands: equal-width frequency bands of the predicted envelope.
        hidden: width of the per-frame MLP (embedding -> band log-std).
        context: video frames on each side seen by the per-frame network (a 1-D
            convolution of width ``2 context + 1``; 0 = the frame alone).
        gated: scale the lip part by ``cond_rel`` (the reliability).
        residual: output scale of the backbone's residual: ``lip`` (``mu sigma_d / sqrt(v)``
            with the lip-predicted ``sigma_d``, the EDM scaling for that variance) or
            ``constant`` (the audio-only model's ``mu sigma_data / sqrt(v0)``: the lips
            shape only the Gaussian part, and the backbone keeps its full range in bins
            the lips call quiet).
        cond_fps, spec_fps: video and STFT frame rates (the time convention of
            :func:`avse.nets.fusion.align_cond`).
    """

    def __init__(self, cond_dim: int, sigma_data: float = 0.1, bands: int = 32, hidden: int = 128,
                 context: int = 1, gated: bool = False, cond_fps: float = LIP_FPS, spec_fps: float = 125.0,
                 residual: str = "lip"):
        super().__init__()
        if int(bands) < 2 or int(hidden) < 1 or int(context) < 0:
            raise InputError(f"lip_variance: need bands >= 2, hidden >= 1, context >= 0; got bands={bands}, "
                             f"hidden={hidden}, context={context}")
        if not sigma_data > 0:
            raise InputError(f"lip_variance: sigma_data must be > 0, got {sigma_data}")
        if residual not in RESIDUALS:
            raise InputError(f"lip_variance: residual must be one of {RESIDUALS}, got {residual!r}")
        self.bands, self.gated, self.residual = int(bands), bool(gated), str(residual)
        self.temper = 1.0  # inference-time weight of the lip part (:meth:`set_temper`); not stored
        self.cond_fps, self.spec_fps = float(cond_fps), float(spec_fps)
        self.config = {"bands": self.bands, "hidden": int(hidden), "context": int(context),
                       "gated": self.gated, "cond_fps": self.cond_fps, "spec_fps": self.spec_fps,
                       "residual": self.residual}
        self.base = nn.Parameter(torch.full((self.bands,), math.log(float(sigma_data))))
        self.norm = nn.LayerNorm(int(cond_dim))
        self.inp = nn.Conv1d(int(cond_dim), int(hidden), 2 * int(context) + 1, padding=int(context))
        self.out = nn.Linear(int(hidden), self.bands)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def set_temper(self, w: float) -> None:
        """Weight ``w`` of the lip part at inference: ``log sigma_d = base + w delta(lips)``
        (1: as trained; 0: the unconditional envelope; ``0 < w < 1`` a flatter, less
        confident lip envelope). An inference knob: it is not part of the stored config."""
        if not 0.0 <= float(w) <= 2.0:
            raise InputError(f"lip_variance: temper weight must be in [0, 2], got {w}")
        self.temper = float(w)

    def lip_part(self, cond: torch.Tensor, cond_mask: torch.Tensor | None) -> torch.Tensor:
        """``(B, Tc, bands)`` log-std offsets of the video frames (0 where missing)."""
        m = (torch.ones(cond.shape[:2], dtype=torch.bool, device=cond.device) if cond_mask is None
             else cond_mask.to(device=cond.device, dtype=torch.bool))
        c = self.norm(cond.float()) * m[..., None]
        h = F.silu(self.inp(c.transpose(1, 2))).transpose(1, 2)
        return self.out(h) * m[..., None]

    def forward(self, cond: torch.Tensor | None, cond_mask: torch.Tensor | None, cond_rel: torch.Tensor | None,
                n_freq: int, n_frames: int, batch: int | None = None) -> torch.Tensor:
        """``log sigma_d (B, n_freq, n_frames)`` float32; ``cond=None``: the base profile,
        expanded to ``batch``."""
        if cond is None:
            prof = self.base[None, :, None].expand(int(batch or 1), self.bands, int(n_frames))
            return self._to_bins(prof, n_freq)
        if cond.dim() != 3:
            raise InputError(f"lip_variance: cond must be (B, Tc, D) embeddings, got {tuple(cond.shape)}")
        delta, present = align_cond(self.lip_part(cond, cond_mask), cond_mask, int(n_frames),
                                    self.cond_fps, self.spec_fps)
        if self.gated and cond_rel is not None:
            rel, _ = align_cond(cond_rel.float().clamp(0, 1)[..., None], cond_mask, int(n_frames),
                                self.cond_fps, self.spec_fps)
            delta = delta * rel
        if self.temper != 1.0:
            delta = delta * self.temper
        prof = self.base[None, :, None] + delta.transpose(1, 2)  # (B, bands, T)
        return self._to_bins(prof, n_freq)

    def _to_bins(self, prof: torch.Tensor, n_freq: int) -> torch.Tensor:
        """Bands ``(B, bands, T)`` -> bins ``(B, F, T)`` by linear interpolation over
        frequency (band centres at equal spacing, edges held)."""
        B, K, T = prof.shape
        x = prof.permute(0, 2, 1).reshape(B * T, 1, K)
        y = F.interpolate(x, size=int(n_freq), mode="linear", align_corners=False)
        return y.reshape(B, T, int(n_freq)).permute(0, 2, 1)
