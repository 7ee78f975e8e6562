"""Fake lip-reading checkpoints with the exact layout of the released ResNet-18 + MS-TCN
LRW models (Martinez et al., ICASSP 2020; Ma et al., ICASSP 2021), and a reference
forward pass written from the same description, for the tests of ``resnet18_tcn``.

Source of the layout: github.com/mpc001/Lipreading_using_Temporal_Convolutional_Networks
(``lipreading/model.py``: ``frontend3D`` = Sequential(Conv3d 1->64 (5, 7, 7) no bias,
BatchNorm3d, PReLU(64) | Swish | ReLU, MaxPool3d), ``trunk`` = ResNet(BasicBlock,
[2, 2, 2, 2]) with ``layer1..4``, each block ``conv1 bn1 relu1 conv2 bn2 relu2`` and a
``downsample`` = Sequential(Conv2d 1x1 no bias, BatchNorm2d); ``tcn`` =
MultiscaleMultibranchTCN with ``mb_ms_tcn.network.<i>`` blocks of branches
``cbcr<set>_<k>`` = (``conv`` Conv1d with bias, ``batchnorm``, ``non_lin``), a
``downsample`` Conv1d 1x1 with bias when ``c_in // n_kernels != c_out``, ``relu_final``,
and ``tcn_output`` Linear(768, 500); ``lipreading/utils.py``: checkpoints are
``{"epoch_idx", "model_state_dict", "optimizer_state_dict", "best_prec"}``). Values are
random; nothing here is a trained network.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F

MEAN, STD = 0.421, 0.165


def _bn(sd, prefix, c, g):
    sd[f"{prefix}.weight"] = 1 + 0.1 * torch.randn(c, generator=g)
    sd[f"{prefix}.bias"] = 0.1 * torch.randn(c, generator=g)
    sd[f"{prefix}.running_mean"] = 0.1 * torch.randn(c, generator=g)
    sd[f"{prefix}.running_var"] = 0.5 + torch.rand(c, generator=g)
    sd[f"{prefix}.num_batches_tracked"] = torch.tensor(1000)


def _w(shape, g):
    fan = 1
    for s in shape[1:]:
        fan *= s
    return torch.randn(*shape, generator=g) * (2.0 / fan) ** 0.5


def lrw_state_dict(act="swish", width=64, hidden=256, kernels=(3, 5, 7), layers=4, n_classes=500, seed=0,
                   legacy=False):
    """The ``model_state_dict`` of a released video model (random values)."""
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    prelu = act == "prelu"
    sd["frontend3D.0.weight"] = _w((width, 1, 5, 7, 7), g)
    _bn(sd, "frontend3D.1", width, g)
    if prelu:
        sd["frontend3D.2.weight"] = torch.full((width,), 0.25)
    c = width
    for L, mult in enumerate((1, 2, 4, 8), start=1):
        co = width * mult
        for b in range(2):
            p = f"trunk.layer{L}.{b}"
            ci = c if b == 0 else co
            sd[f"{p}.conv1.weight"] = _w((co, ci, 3, 3), g)
            _bn(sd, f"{p}.bn1", co, g)
            if prelu:
                sd[f"{p}.relu1.weight"] = torch.full((co,), 0.25)
            sd[f"{p}.conv2.weight"] = _w((co, co, 3, 3), g)
            _bn(sd, f"{p}.bn2", co, g)
            if prelu:
                sd[f"{p}.relu2.weight"] = torch.full((co,), 0.25)
            if b == 0 and L > 1:
                sd[f"{p}.downsample.0.weight"] = _w((co, ci, 1, 1), g)
                _bn(sd, f"{p}.downsample.1", co, g)
        c = co
    n_k = len(kernels)
    c_out = hidden * n_k
    for i in range(layers):
        p = f"tcn.mb_ms_tcn.network.{i}"
        for s, ci in ((0, c), (1, c_out)):
            for k, ks in enumerate(kernels):
                q = f"{p}.cbcr{s}_{k}"
                sd[f"{q}.conv.weight"] = _w((hidden, ci, ks), g)
                sd[f"{q}.conv.bias"] = 0.1 * torch.randn(hidden, generator=g)
                _bn(sd, f"{q}.batchnorm", hidden, g)
                if prelu:
                    sd[f"{q}.non_lin.weight"] = torch.full((hidden,), 0.25)
        if c // n_k != c_out:
            sd[f"{p}.downsample.weight"] = _w((c_out, c, 1), g)
            sd[f"{p}.downsample.bias"] = 0.1 * torch.randn(c_out, generator=g)
        if prelu:
            sd[f"{p}.relu_final.weight"] = torch.full((c_out,), 0.25)
        c = c_out
    sd["tcn.tcn_output.weight"] = _w((n_classes, c_out), g)
    sd["tcn.tcn_output.bias"] = torch.zeros(n_classes)
    if legacy:  # the ICASSP 2020 code also had a top-level classifier
        sd["tcn_output.weight"] = _w((n_classes, c_out), g)
        sd["tcn_output.bias"] = torch.zeros(n_classes)
    return sd


def save_lrw_checkpoint(path, sd, data_parallel=False):
    """Write ``sd`` as the repository's checkpoint dict (``module.`` keys if asked)."""
    if data_parallel:
        sd = OrderedDict((f"module.{k}", v) for k, v in sd.items())
    torch.save({"epoch_idx": 79, "model_state_dict": sd, "optimizer_state_dict": {}, "best_prec": 0.879}, path)


def _act(x, sd, key, act):
    if act == "prelu":
        return F.prelu(x, sd[key])
    return x * torch.sigmoid(x) if act == "swish" else F.relu(x)


def _bnf(x, sd, p):
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                        False, 0.0, 1e-5)


@torch.no_grad()
def reference_features(sd, lips, act="swish", kernels=(3, 5, 7), layers=4):
    """Per-frame output ``(B, T, 768)`` of the released network's TCN (eval mode) for
    ``lips (B, T, 88, 88)`` uint8, written from the description above: 3D front,
    ResNet-18, MS-TCN branches padded ``(k-1) d`` both sides, BatchNorm, then
    ``(k-1) d / 2`` trimmed from each end (the symmetric "chomp"), activation."""
    B, T = lips.shape[:2]
    x = ((lips.float() / 255 - MEAN) / STD)[:, None]
    x = F.conv3d(x, sd["frontend3D.0.weight"], stride=(1, 2, 2), padding=(2, 3, 3))
    x = _act(_bnf(x, sd, "frontend3D.1"), sd, "frontend3D.2.weight", act)
    x = F.max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1))
    x = x.transpose(1, 2).reshape(B * T, x.shape[1], *x.shape[3:])
    for L in range(1, 5):
        for b in range(2):
            p = f"trunk.layer{L}.{b}"
            s = 2 if (b == 0 and L > 1) else 1
            h = _act(_bnf(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=s, padding=1), sd, f"{p}.bn1"), sd,
                     f"{p}.relu1.weight", act)
            h = _bnf(F.conv2d(h, sd[f"{p}.conv2.weight"], padding=1), sd, f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                x = _bnf(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=s), sd, f"{p}.downsample.1")
            x = _act(h + x, sd, f"{p}.relu2.weight", act)
    x = x.mean(dim=(-2, -1)).reshape(B, T, -1).transpose(1, 2)
    for i in range(layers):
        p, d = f"tcn.mb_ms_tcn.network.{i}", 2 ** i
        inp = x
        for s in (0, 1):
            outs = []
            for k, ks in enumerate(kernels):
                q, pad = f"{p}.cbcr{s}_{k}", (ks - 1) * d
                h = F.conv1d(inp, sd[f"{q}.conv.weight"], sd[f"{q}.conv.bias"], padding=pad, dilation=d)
                h = _bnf(h, sd, f"{q}.batchnorm")
                h = h[:, :, pad // 2:h.shape[-1] - pad // 2] if pad else h
                outs.append(_act(h, sd, f"{q}.non_lin.weight", act))
            inp = torch.cat(outs, 1)
        res = F.conv1d(x, sd[f"{p}.downsample.weight"], sd[f"{p}.downsample.bias"]) \
            if f"{p}.downsample.weight" in sd else x
        x = _act(inp + res, sd, f"{p}.relu_final.weight", act)
    return x.transpose(1, 2)
