"""Lip encoders: 25 fps mouth crops -> per-video-frame embeddings, trainable from scratch.

``resnet_tcn`` follows the visual front-end of lip-reading networks (Stafylakis and
Tzimiropoulos, "Combining residual networks with LSTMs for lipreading", Interspeech
2017; the ResNet18 + MS-TCN of Martinez et al., ICASSP 2020, used by AV-UDiffSE,
Ayilo et al., ICASSP 2025) at a CPU-friendly size: a 3D convolution over
(time, height, width) with max-pooling, a light 2D ResNet applied to every frame,
global average pooling, a linear map to ``dim`` and a residual temporal convolution
network over the frame sequence. GroupNorm everywhere (no batch statistics, so a
frozen encoder behaves the same in train and eval mode and under DDP).

Interface: ``enc(lips (B, T, H, W) uint8 or float in [0, 255], mask (B, T) bool | None)
-> (B, T, dim) float``. Pixels are normalised ``(v / 255 - 0.421) / 0.165`` (the
LRW/TCD-TIMIT statistics used by the lip-reading literature). Missing frames
(``mask`` False) are set to the normalised mean (0) before the network and their
embeddings to zero before the temporal network, so their pixel content never reaches
any output; the fusion modules ignore their (zero) embeddings as well.

Visual inputs (an encoder's ``input_kind``, :data:`VISUAL_INPUTS`): ``crops`` (this
module's ``resnet_tcn`` and :mod:`avse.nets.lip_resnet18`'s ``resnet18_tcn``: mouth crops
``(B, T, H, W)`` from ``lip.scp``) or ``features`` (:mod:`avse.nets.lip_features`:
visual features ``(B, T, D)`` computed elsewhere, from ``lip_feats.scp``). A model
takes either the encoder's input or its embeddings ``(B, T, dim)``
(:func:`is_encoder_input` tells them apart).
"""
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from avse.errors import InputError
from avse.nets.layers import group_norm
from avse.utils.registry import Registry

LIP_ENCODERS = Registry("lip encoder")
LIP_MEAN, LIP_STD = 0.421, 0.165
# what an encoder reads -> the data-dir table that lists it by default
VISUAL_INPUTS = {"crops": "lip.scp", "features": "lip_feats.scp"}


def normalize_lips(lips: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, T, H, W)`` in [0, 255] -> float ``(v / 255 - 0.421) / 0.165``; missing
    frames (``mask`` False) become 0."""
    x = (lips.float() / 255.0 - LIP_MEAN) / LIP_STD
    if mask is not None:
        x = x * mask.to(x.dtype)[:, :, None, None]
    return x


class BasicBlock2d(nn.Module):
    """ResNet basic block ``(N, c_in, H, W) -> (N, c_out, H/stride, W/stride)``."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.n1 = group_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.n2 = group_norm(c_out)
        self.skip = None
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), group_norm(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.n1(self.conv1(x)))
        h = self.n2(self.conv2(h))
        return F.silu(h + (x if self.skip is None else self.skip(x)))


class TemporalBlock(nn.Module):
    """Residual dilated 1D convolution over frames: ``(B, D, T) -> (B, D, T)``."""

    def __init__(self, dim: int, kernel: int = 3, dilation: int = 1, dropout: float = 0.0):
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.conv1 = nn.Conv1d(dim, dim, kernel, padding=pad, dilation=dilation)
        self.n1 = group_norm(dim)
        self.conv2 = nn.Conv1d(dim, dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x * m)
        h = self.conv2(self.drop(F.silu(self.n1(h))))
        return x + h


@LIP_ENCODERS.register("resnet_tcn")
class ResNetTCNLipEncoder(nn.Module):
    """3D-conv front + light 2D ResNet per frame + temporal conv network.

    Args:
        dim: embedding size ``D`` of the output ``(B, T, D)``.
        front_channels: channels of the 3D convolution (kernel ``front_kernel``,
            stride (1, 2, 2)) followed by a (1, 3, 3) max-pool of stride (1, 2, 2):
            88 x 88 -> 22 x 22.
        channels: output channels of the ResNet stages (each stride 2, one or
            ``blocks`` basic blocks).
        tcn_layers, tcn_kernel: residual temporal blocks (dilations 1, 2, 4, ...).
        dropout: dropout in the temporal blocks.
        size: expected crop size (88).
        input_pool: average-pool the frames by this factor first (2: 44 x 44; a
            CPU-sized encoder for synthetic mouths; 1 for real video).
    """

    input_kind = "crops"
    DEFAULTS = dict(dim=128, front_channels=16, front_kernel=(5, 7, 7), channels=(16, 32, 64),
                    blocks=1, tcn_layers=2, tcn_kernel=3, dropout=0.0, size=88, input_pool=1)

    def __init__(self, **conf):
        super().__init__()
        unknown = set(conf) - set(self.DEFAULTS)
        if unknown:
            raise InputError(f"resnet_tcn: unknown option(s) {sorted(unknown)}; known: {sorted(self.DEFAULTS)}")
        cfg = copy.deepcopy(self.DEFAULTS)
        cfg.update(conf)
        cfg["front_kernel"] = [int(k) for k in cfg["front_kernel"]]
        cfg["channels"] = [int(c) for c in cfg["channels"]]
        if len(cfg["front_kernel"]) != 3 or any(k % 2 == 0 for k in cfg["front_kernel"]):
            raise InputError(f"resnet_tcn: front_kernel must be 3 odd sizes, got {cfg['front_kernel']}")
        for k in ("dim", "front_channels", "blocks", "tcn_kernel", "size", "input_pool"):
            cfg[k] = int(cfg[k])
            if cfg[k] < 1:
                raise InputError(f"resnet_tcn: {k} must be >= 1, got {cfg[k]}")
        self.config = cfg
        self.dim, self.size = cfg["dim"], cfg["size"]
        kt, kh, kw = cfg["front_kernel"]
        c0 = cfg["front_channels"]
        self.front = nn.Sequential(
            nn.Conv3d(1, c0, (kt, kh, kw), (1, 2, 2), (kt // 2, kh // 2, kw // 2), bias=False),
            group_norm(c0), nn.SiLU(), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        stages, c = [], c0
        for co in cfg["channels"]:
            for b in range(cfg["blocks"]):
                stages.append(BasicBlock2d(c, co, stride=2 if b == 0 else 1))
                c = co
        self.resnet = nn.Sequential(*stages)
        self.proj = nn.Linear(c, cfg["dim"])
        self.tcn = nn.ModuleList(TemporalBlock(cfg["dim"], cfg["tcn_kernel"], 2 ** i, float(cfg["dropout"]))
                                 for i in range(int(cfg["tcn_layers"])))
        self.norm = nn.LayerNorm(cfg["dim"])

    def forward(self, lips: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``lips (B, T, H, W)``, ``mask (B, T)`` bool -> ``(B, T, dim)``."""
        if lips.dim() != 4 or tuple(lips.shape[-2:]) != (self.size, self.size):
            raise InputError(f"lip encoder: expected lips (B, T, {self.size}, {self.size}), "
                             f"got {tuple(lips.shape)}")
        B, T = lips.shape[:2]
        if mask is not None and tuple(mask.shape) != (B, T):
            raise InputError(f"lip encoder: mask {tuple(mask.shape)} does not match lips {tuple(lips.shape)}")
        param = self.proj.weight
        x = normalize_lips(lips, mask).to(param.dtype)
        if self.config["input_pool"] > 1:
            x = F.avg_pool2d(x, self.config["input_pool"])
        h = self.front(x[:, None])  # (B, c0, T, H', W')
        h = h.transpose(1, 2).reshape(B * T, *h.shape[1:2], *h.shape[3:])
        h = self.resnet(h).mean(dim=(-2, -1))  # (B*T, c)
        h = self.proj(h).reshape(B, T, -1).transpose(1, 2)  # (B, D, T)
        m = (torch.ones(B, 1, T, dtype=h.dtype, device=h.device) if mask is None
             else mask.to(h.dtype)[:, None, :])
        h = h * m
        for blk in self.tcn:
            h = blk(h, m)
        return self.norm(h.transpose(1, 2)) * m.transpose(1, 2)


def build_lip_encoder(name: str, conf: dict | None = None) -> nn.Module:
    """``LIP_ENCODERS.build(name, **conf)``; the module has ``.dim``, ``.config`` and
    ``.input_kind``."""
    if not isinstance(conf or {}, dict):
        raise InputError(f"lip_encoder_conf must be a mapping, got {conf!r}")
    return LIP_ENCODERS.build(name, **(conf or {}))


def encoder_input(name: str) -> str:
    """What the registered encoder ``name`` reads: ``crops`` or ``features``."""
    return getattr(LIP_ENCODERS.get(str(name)), "input_kind", "crops")


def lip_table(name: str, table: str | None = None) -> str:
    """The data-dir table of the visual input of encoder ``name``: ``table`` if given,
    else ``lip.scp`` (crops) or ``lip_feats.scp`` (features)."""
    return table or VISUAL_INPUTS[encoder_input(name)]


def is_encoder_input(encoder: nn.Module, cond: torch.Tensor) -> bool:
    """True when ``cond`` is what ``encoder`` reads (crops ``(B, T, H, W)`` or its
    features ``(B, T, in_dim)``), False for embeddings ``(B, T, dim)``."""
    check = getattr(encoder, "is_input", None)
    return bool(check(cond)) if check is not None else cond.dim() == 4


# the other encoders register themselves on import
from avse.nets import lip_features, lip_resnet18  # noqa: E402,F401
