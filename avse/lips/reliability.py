"""Lip-reliability network: how usable is each mouth crop, as a score in [0, 1].

A small CNN embeds every frame (normalised as the lip encoder's input,
``(v / 255 - 0.421) / 0.165``, average-pooled by ``pool``), an optional temporal
convolution mixes neighbouring frames, and a linear layer gives one logit per
frame; the score is its sigmoid. It is trained (:mod:`avse.lips.rel_train`) on clean
crops with synthetic corruptions (:mod:`avse.lips.corrupt`) as labels: 1 for a
clean frame, 0 for a missing, occluded, blurred, dark or off-centre one. This is the
per-frame visual reliability estimate of reliability-weighted audio-visual fusion
(e.g. Hong et al., "Watch or listen: robust audio-visual speech recognition with
visual corruption modeling and reliability scoring", CVPR 2023), here as a separate
model whose output can gate the video stream.

Use::

    rel = load_lip_rel("exp/lip_rel/model.pt")
    scores = rel.reliability(lips)   # (T, 88, 88) uint8 -> (T,) float32 in [0, 1]
"""
import os
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from avse.errors import InputError
from avse.lips.backends import LIP_SIZE

LIP_MEAN, LIP_STD = 0.421, 0.165
FORMAT = "avse-lip-rel-1"


def normalise(lips: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 crops ``(..., S, S)`` -> float32 tensor ``(v / 255 - mean) / std``."""
    x = lips.float() if torch.is_tensor(lips) else torch.tensor(np.asarray(lips), dtype=torch.float32)
    return (x / 255.0 - LIP_MEAN) / LIP_STD


class LipRelNet(nn.Module):
    """``(B, T, S, S)`` normalised crops -> ``(B, T)`` logits.

    Args:
        size: crop side ``S``.
        pool: average-pooling factor applied to the input first.
        channels: output channels of the stride-2 3x3 convolutions.
        emb: frame embedding size.
        temporal: kernel (frames) of the temporal convolution; 1 = per frame only.
    """

    def __init__(self, size: int = LIP_SIZE, pool: int = 2, channels: Sequence[int] = (8, 16, 32),
                 emb: int = 32, temporal: int = 5):
        super().__init__()
        self.conf = {"size": size, "pool": pool, "channels": list(channels), "emb": emb, "temporal": temporal}
        layers, c_in, s = [nn.AvgPool2d(pool) if pool > 1 else nn.Identity()], 1, size // max(pool, 1)
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
            c_in, s = c, (s + 1) // 2
        self.cnn = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * s * s, emb), nn.ReLU())
        if temporal % 2 != 1:
            raise InputError(f"temporal kernel must be odd, got {temporal}")
        self.temporal = nn.Conv1d(emb, emb, temporal, padding=temporal // 2) if temporal > 1 else None
        self.out = nn.Linear(emb, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, S, _ = x.shape
        e = self.cnn(x.reshape(B * T, 1, S, S)).reshape(B, T, -1)
        if self.temporal is not None:
            e = e + torch.relu(self.temporal(e.transpose(1, 2))).transpose(1, 2)
        return self.out(e).squeeze(-1)


class LipReliability:
    """A trained :class:`LipRelNet` for inference (CPU by default).

    Args:
        net: the network (put in eval mode).
        smooth: running-median window over the scores (frames, odd; 1 = none).
    """

    def __init__(self, net: LipRelNet, smooth: int = 1, device: str = "cpu"):
        self.net = net.to(device).eval()
        self.smooth = max(1, int(smooth) | 1)
        self.device = device
        self.size = net.conf["size"]

    @torch.no_grad()
    def reliability(self, lips: np.ndarray) -> np.ndarray:
        """``(T, S, S)`` uint8 crops -> ``(T,)`` float32 scores in [0, 1]."""
        lips = np.asarray(lips)
        if lips.ndim != 3 or lips.shape[1:] != (self.size, self.size) or lips.dtype != np.uint8:
            raise InputError(f"lips must be uint8 (T, {self.size}, {self.size}), got {lips.dtype} {lips.shape}")
        if len(lips) == 0:
            return np.zeros(0, np.float32)
        x = normalise(lips).to(self.device)[None]
        p = torch.sigmoid(self.net(x))[0].cpu().numpy().astype(np.float32)
        if self.smooth > 1 and len(p) > 1:
            r = self.smooth // 2
            win = np.lib.stride_tricks.sliding_window_view(np.pad(p, r, mode="edge"), self.smooth)
            p = np.median(win, axis=-1).astype(np.float32)
        return p

    __call__ = reliability


def save_lip_rel(path: str, net: LipRelNet, info: Optional[dict] = None) -> None:
    """Write the network (weights + architecture + ``info``) to ``path`` atomically."""
    from avse.utils.fileio import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "conf": net.conf, "state_dict": net.state_dict(),
                    "info": info or {}}, tmp)


def load_lip_rel(path: str, smooth: int = 1, device: str = "cpu") -> LipReliability:
    """Load a model written by :func:`save_lip_rel` (by ``avse.bin.train_lip_rel``)."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: lip-reliability model not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise InputError(f"{path}: not a readable lip-reliability model: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputError(f"{path}: not a lip-reliability model (format {FORMAT})")
    net = LipRelNet(**ckpt["conf"])
    net.load_state_dict(ckpt["state_dict"])
    return LipReliability(net, smooth=smooth, device=device)
