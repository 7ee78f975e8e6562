"""``resnet18_tcn``: the lip-reading visual front-end whose released LRW weights load into it.

The ResNet-18 + multi-scale temporal convolutional network (MS-TCN) of Martinez, Ma,
Petridis, Pantic, "Lipreading using temporal convolutional networks" (ICASSP 2020) and
Ma, Martinez, Petridis, Pantic, "Towards practical lipreading with distilled and
efficient models" (ICASSP 2021), as the papers describe it and as its public repository
lays out its weights (github.com/mpc001/Lipreading_using_Temporal_Convolutional_Networks:
``lipreading/model.py``, ``lipreading/models/resnet.py``, ``lipreading/models/tcn.py``,
``configs/lrw_resnet18_mstcn.json``), with a new head:

* front: ``Conv3d`` 1 -> ``width`` (64), kernel (5, 7, 7), stride (1, 2, 2), padding
  (2, 3, 3), no bias; ``BatchNorm3d``; activation; max-pool (1, 3, 3), stride (1, 2, 2),
  padding (0, 1, 1): ``(B, 1, T, 88, 88) -> (B, 64, T, 22, 22)``;
* trunk, per frame: ResNet-18, four stages of two basic blocks (``width`` x 1, 2, 4, 8
  channels; strides 1, 2, 2, 2; 3x3 convolutions without bias, ``BatchNorm2d``, an
  activation after the first convolution and one after the residual sum; a 1x1
  convolution + ``BatchNorm2d`` shortcut on the first block of stages 2-4), global
  average pool: ``(B T, 8 width)`` = 512;
* MS-TCN over frames: ``tcn_layers`` (4) residual blocks of dilation ``2^i``, each two
  sets of parallel branches (kernels ``tcn_kernels`` (3, 5, 7), ``tcn_hidden`` (256)
  channels each, concatenated: 768). A branch is a dilated ``Conv1d`` with bias and
  centred padding (the released code pads ``(k-1) d`` on both sides and trims half of it
  from each end after the BatchNorm: the same numbers), ``BatchNorm1d`` and an
  activation; dropout after each set; a 1x1 ``Conv1d`` with bias on the residual path
  unless ``c_in // n_branches == c_out`` (the released rule: every block of the standard
  sizes has one); an activation after the sum. ``tcn_layers: 0``: no TCN (the trunk's
  512-d output, e.g. to load the front-end of a DC-TCN model);
* head (new here, trained with the prior): ``Linear(768 -> dim)`` and ``LayerNorm``.

``act``: ``swish`` (``x sigmoid(x)``, the repository's current configs), ``prelu``
(per-channel PReLU, with weights; the ICASSP 2020 release) or ``relu``. Pixels are
normalised as for ``resnet_tcn`` (the same LRW statistics, 88 x 88 grey crops).
BatchNorm layers always use their stored statistics (eval mode, also while training):
the checkpoint's, or 0 / 1 when trained from scratch; so, as with the GroupNorm of
``resnet_tcn``, no batch statistics. Missing frames (``mask`` False) are the
normalised mean (0) at the input and zero before every TCN block and at the output.

Checkpoint keys, mapped to this module's by :meth:`ResNet18TCNLipEncoder.lrw_key`:
``frontend3D.0.weight`` (64, 1, 5, 7, 7), ``frontend3D.1.*`` (BatchNorm3d: ``weight``,
``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``),
``frontend3D.2.weight`` (64; PReLU only); ``trunk.layer{1-4}.{0,1}.conv{1,2}.weight``,
``.bn{1,2}.*``, ``.relu{1,2}.weight`` (PReLU only), ``trunk.layer{2-4}.0.downsample.{0,1}.*``
(shortcut conv, BatchNorm2d); ``tcn.mb_ms_tcn.network.{i}.cbcr{0,1}_{k}.{conv,batchnorm,
non_lin}.*`` (branch ``k`` of set 0 / 1 of block ``i``; ``conv.weight`` (256, 512 or 768,
kernel)), ``.downsample.{weight,bias}`` ((768, 512 or 768, 1)), ``.relu_final.weight``
(768; PReLU only); ``tcn.tcn_output.*`` and, in the ICASSP 2020 code, ``tcn_output.*``:
the 500-word classifier, not used.
"""
import copy
import re

import torch
import torch.nn as nn

from avse.errors import InputError
from avse.nets.lip_encoder import LIP_ENCODERS, normalize_lips

ACTS = ("swish", "prelu", "relu")
_BN = nn.modules.batchnorm._BatchNorm


def _act(kind: str, channels: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU(channels)
    return nn.SiLU() if kind == "swish" else nn.ReLU()


class BasicBlock(nn.Module):
    """ResNet basic block with BatchNorm: ``(N, c_in, H, W) -> (N, c_out, H/s, W/s)``."""

    def __init__(self, c_in: int, c_out: int, stride: int, act: str):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = _act(act, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act2 = _act(act, c_out)
        self.short = None
        if stride != 1 or c_in != c_out:
            self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(h + (x if self.short is None else self.short(x)))


class Branch(nn.Module):
    """Dilated 1D convolution with centred padding, BatchNorm, activation:
    ``(B, c_in, T) -> (B, c_out, T)``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, act: str):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=(kernel - 1) * dilation // 2, dilation=dilation)
        self.bn = nn.BatchNorm1d(c_out)
        self.act = _act(act, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class MultiBranchBlock(nn.Module):
    """One MS-TCN residual block: ``(B, c_in, T) -> (B, hidden * len(kernels), T)``."""

    def __init__(self, c_in: int, hidden: int, kernels, dilation: int, act: str, dropout: float):
        super().__init__()
        c_out = hidden * len(kernels)
        self.set0 = nn.ModuleList(Branch(c_in, hidden, k, dilation, act) for k in kernels)
        self.set1 = nn.ModuleList(Branch(c_out, hidden, k, dilation, act) for k in kernels)
        self.drop = nn.Dropout(dropout)
        self.res = nn.Conv1d(c_in, c_out, 1) if c_in // len(kernels) != c_out else None
        if self.res is None and c_in != c_out:
            raise InputError(f"resnet18_tcn: a TCN block of {c_in} -> {c_out} channels has no residual "
                             "projection under the released rule; choose other tcn_hidden / tcn_kernels")
        self.act = _act(act, c_out)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        x = x * m
        h = self.drop(torch.cat([b(x) for b in self.set0], 1))
        h = self.drop(torch.cat([b(h) for b in self.set1], 1))
        return self.act(h + (x if self.res is None else self.res(x)))


# released key -> this module's key (see the module docstring)
_BRANCH_PART = {"conv": "conv", "batchnorm": "bn", "non_lin": "act"}
_RULES = [
    (re.compile(r"^frontend3D\.([012])\.(\w+)$"), lambda m: f"front.{m[1]}.{m[2]}"),
    (re.compile(r"^trunk\.layer([1-4])\.(\d+)\.(conv[12]|bn[12])\.(\w+)$"),
     lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.{m[3]}.{m[4]}"),
    (re.compile(r"^trunk\.layer([1-4])\.(\d+)\.relu([12])\.(\w+)$"),
     lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.act{m[3]}.{m[4]}"),
    (re.compile(r"^trunk\.layer([1-4])\.(\d+)\.downsample\.([01])\.(\w+)$"),
     lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.short.{m[3]}.{m[4]}"),
    (re.compile(r"^tcn\.mb_ms_tcn\.network\.(\d+)\.cbcr([01])_(\d+)\.(conv|batchnorm|non_lin)\.(\w+)$"),
     lambda m: f"tcn.{m[1]}.set{m[2]}.{m[3]}.{_BRANCH_PART[m[4]]}.{m[5]}"),
    (re.compile(r"^tcn\.mb_ms_tcn\.network\.(\d+)\.downsample\.(\w+)$"), lambda m: f"tcn.{m[1]}.res.{m[2]}"),
    (re.compile(r"^tcn\.mb_ms_tcn\.network\.(\d+)\.relu_final\.(\w+)$"), lambda m: f"tcn.{m[1]}.act.{m[2]}"),
]
CLASSIFIER = re.compile(r"^(tcn\.)?tcn_output\.")


@LIP_ENCODERS.register("resnet18_tcn")
class ResNet18TCNLipEncoder(nn.Module):
    """ResNet-18 + MS-TCN lip-reading front-end + new head (see the module docstring).

    Args:
        dim: embedding size of the output ``(B, T, dim)``.
        act: ``swish``, ``prelu`` or ``relu`` (must match the checkpoint).
        width: channels of the 3D front and of stage 1 (64 in the released models).
        tcn_layers, tcn_kernels, tcn_hidden: MS-TCN blocks, branch kernels, channels per
            branch (4, (3, 5, 7), 256); ``tcn_layers: 0``: no TCN.
        dropout: dropout after each branch set (the released training used 0.2).
        size: expected crop size (88).
    """

    input_kind = "crops"
    DEFAULTS = dict(dim=512, act="swish", width=64, tcn_layers=4, tcn_kernels=(3, 5, 7), tcn_hidden=256,
                    dropout=0.0, size=88)
    NEW = ("head.", "norm.")  # tensors that no lip-reading checkpoint holds

    def __init__(self, **conf):
        super().__init__()
        unknown = set(conf) - set(self.DEFAULTS)
        if unknown:
            raise InputError(f"resnet18_tcn: unknown option(s) {sorted(unknown)}; known: {sorted(self.DEFAULTS)}")
        cfg = copy.deepcopy(self.DEFAULTS)
        cfg.update(conf)
        cfg["tcn_kernels"] = [int(k) for k in cfg["tcn_kernels"]]
        if not cfg["tcn_kernels"] or any(k < 1 or k % 2 == 0 for k in cfg["tcn_kernels"]):
            raise InputError(f"resnet18_tcn: tcn_kernels must be odd sizes, got {cfg['tcn_kernels']}")
        if cfg["act"] not in ACTS:
            raise InputError(f"resnet18_tcn: act must be one of {ACTS}, got {cfg['act']!r}")
        for k in ("dim", "width", "tcn_hidden", "size"):
            cfg[k] = int(cfg[k])
            if cfg[k] < 1:
                raise InputError(f"resnet18_tcn: {k} must be >= 1, got {cfg[k]}")
        cfg["tcn_layers"], cfg["dropout"] = int(cfg["tcn_layers"]), float(cfg["dropout"])
        if cfg["tcn_layers"] < 0:
            raise InputError(f"resnet18_tcn: tcn_layers must be >= 0, got {cfg['tcn_layers']}")
        self.config = cfg
        self.dim, self.size = cfg["dim"], cfg["size"]
        w, act = cfg["width"], cfg["act"]
        self.front = nn.Sequential(nn.Conv3d(1, w, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False),
                                   nn.BatchNorm3d(w), _act(act, w))
        self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        stages, c = [], w
        for i, mult in enumerate((1, 2, 4, 8)):
            co = w * mult
            stages.append(nn.Sequential(BasicBlock(c, co, 1 if i == 0 else 2, act), BasicBlock(co, co, 1, act)))
            c = co
        self.stages = nn.ModuleList(stages)
        self.tcn = nn.ModuleList()
        for i in range(cfg["tcn_layers"]):
            self.tcn.append(MultiBranchBlock(c, cfg["tcn_hidden"], cfg["tcn_kernels"], 2 ** i, act, cfg["dropout"]))
            c = cfg["tcn_hidden"] * len(cfg["tcn_kernels"])
        self.head = nn.Linear(c, cfg["dim"])
        self.norm = nn.LayerNorm(cfg["dim"])
        self.train(True)

    def train(self, mode: bool = True) -> "ResNet18TCNLipEncoder":
        """As ``nn.Module.train``, but the BatchNorm layers stay in eval mode."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, _BN):
                m.eval()
        return self

    @staticmethod
    def lrw_key(key: str) -> str | None:
        """This module's name of the released checkpoint's tensor ``key`` (``module.``
        stripped), ``""`` for the word classifier, None for a key of no known part."""
        if CLASSIFIER.match(key):
            return ""
        for pattern, name in _RULES:
            m = pattern.match(key)
            if m:
                return name(m)
        return None

    def lipreading_features(self, lips: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The released network's per-frame output before the new head: ``lips (B, T,
        size, size)`` in [0, 255], ``mask (B, T)`` bool -> ``(B, T, C)`` (C = 768 with the
        TCN, 512 without), zero on missing frames."""
        if lips.dim() != 4 or tuple(lips.shape[-2:]) != (self.size, self.size):
            raise InputError(f"lip encoder resnet18_tcn: expected mouth crops (B, T, {self.size}, {self.size}), "
                             f"got {tuple(lips.shape)}")
        B, T = lips.shape[:2]
        if mask is not None and tuple(mask.shape) != (B, T):
            raise InputError(f"lip encoder: mask {tuple(mask.shape)} does not match lips {tuple(lips.shape)}")
        x = normalize_lips(lips, mask).to(self.head.weight.dtype)
        h = self.pool(self.front(x[:, None]))  # (B, w, T, H', W')
        h = h.transpose(1, 2).reshape(B * T, h.shape[1], *h.shape[3:])
        for stage in self.stages:
            h = stage(h)
        h = h.mean(dim=(-2, -1)).reshape(B, T, -1).transpose(1, 2)  # (B, C, T)
        m = (torch.ones(B, 1, T, dtype=h.dtype, device=h.device) if mask is None
             else mask.to(h.dtype)[:, None, :])
        for blk in self.tcn:
            h = blk(h, m)
        return (h * m).transpose(1, 2)

    def forward(self, lips: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``lips (B, T, size, size)`` in [0, 255], ``mask (B, T)`` bool -> ``(B, T, dim)``."""
        h = self.lipreading_features(lips, mask)
        out = self.norm(self.head(h))
        return out if mask is None else out * mask.to(out.dtype)[..., None]
