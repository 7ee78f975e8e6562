"""``features``: an encoder of visual features computed elsewhere, instead of mouth crops.

For visual speech representations extracted by another toolkit, e.g. the per-frame
embeddings of AV-HuBERT (Shi, Hsu, Lakhotia, Mohamed, "Learning audio-visual speech
representation by masked multimodal cluster prediction", ICLR 2022) or of a lip-reading
network such as the ResNet-18 + MS-TCN of Martinez et al. (ICASSP 2020): one ``(T, D)``
float array per utterance at the video frame rate (25 fps), listed in ``lip_feats.scp``
(:data:`avse.nets.lip_encoder.VISUAL_INPUTS`). The features are fixed; this encoder
learns a small projection to the prior's conditioning size:

    LayerNorm over D (``input_norm``) -> Linear(D -> dim) -> ``tcn_layers`` residual
    dilated temporal convolutions (:class:`avse.nets.lip_encoder.TemporalBlock`) ->
    LayerNorm

Interface: ``enc(feats (B, T, in_dim) float, mask (B, T) bool | None) -> (B, T, dim)``.
Missing frames (``mask`` False) are zeroed at the input, before the temporal network
and at the output. ``dim`` must differ from ``in_dim``: a model tells the features it
is given from its embeddings by their size (:meth:`FeatureLipEncoder.is_input`).
"""
import copy

import torch
import torch.nn as nn

from avse.errors import InputError
from avse.nets.lip_encoder import LIP_ENCODERS, TemporalBlock


@LIP_ENCODERS.register("features")
class FeatureLipEncoder(nn.Module):
    """Projection of precomputed visual features (see the module docstring).

    Args:
        in_dim: feature size ``D`` of the ``.npy`` files (required).
        dim: embedding size of the output (not ``in_dim``).
        tcn_layers, tcn_kernel: residual temporal blocks (dilations 1, 2, 4, ...; 0: none).
        dropout: dropout in the temporal blocks.
        input_norm: LayerNorm over the features first (features of any scale).
    """

    input_kind = "features"
    DEFAULTS = dict(in_dim=None, dim=256, tcn_layers=1, tcn_kernel=3, dropout=0.0, input_norm=True)

    def __init__(self, **conf):
        super().__init__()
        unknown = set(conf) - set(self.DEFAULTS)
        if unknown:
            raise InputError(f"features: unknown option(s) {sorted(unknown)}; known: {sorted(self.DEFAULTS)}")
        cfg = copy.deepcopy(self.DEFAULTS)
        cfg.update(conf)
        if cfg["in_dim"] is None:
            raise InputError("lip encoder features: set lip_encoder_conf.in_dim, the size D of the (T, D) "
                             "feature arrays of lip_feats.scp")
        for k in ("in_dim", "dim", "tcn_kernel"):
            cfg[k] = int(cfg[k])
            if cfg[k] < 1:
                raise InputError(f"features: {k} must be >= 1, got {cfg[k]}")
        cfg["tcn_layers"], cfg["dropout"] = int(cfg["tcn_layers"]), float(cfg["dropout"])
        cfg["input_norm"] = bool(cfg["input_norm"])
        if cfg["tcn_layers"] < 0:
            raise InputError(f"features: tcn_layers must be >= 0, got {cfg['tcn_layers']}")
        if cfg["dim"] == cfg["in_dim"]:
            raise InputError(f"features: dim ({cfg['dim']}) must differ from in_dim: the model tells raw "
                             "features from embeddings by their size; choose another dim")
        self.config = cfg
        self.dim, self.in_dim = cfg["dim"], cfg["in_dim"]
        self.in_norm = nn.LayerNorm(self.in_dim) if cfg["input_norm"] else nn.Identity()
        self.proj = nn.Linear(self.in_dim, self.dim)
        self.tcn = nn.ModuleList(TemporalBlock(self.dim, cfg["tcn_kernel"], 2 ** i, cfg["dropout"])
                                 for i in range(cfg["tcn_layers"]))
        self.norm = nn.LayerNorm(self.dim)

    def is_input(self, cond: torch.Tensor) -> bool:
        """True for features ``(B, T, in_dim)``, False for embeddings ``(B, T, dim)``."""
        return cond.dim() == 3 and cond.shape[-1] == self.in_dim

    def forward(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``feats (B, T, in_dim)``, ``mask (B, T)`` bool -> ``(B, T, dim)``."""
        if feats.dim() != 3 or feats.shape[-1] != self.in_dim or not feats.is_floating_point():
            what = " (mouth crops? they need a crop encoder such as resnet_tcn)" if feats.dim() == 4 else ""
            raise InputError(f"lip encoder features: expected float features (B, T, {self.in_dim}), got "
                             f"{tuple(feats.shape)} {feats.dtype}{what}")
        B, T = feats.shape[:2]
        if mask is not None and tuple(mask.shape) != (B, T):
            raise InputError(f"lip encoder: mask {tuple(mask.shape)} does not match features {tuple(feats.shape)}")
        m = (torch.ones(B, T, 1, dtype=self.proj.weight.dtype, device=feats.device) if mask is None
             else mask.to(self.proj.weight.dtype)[..., None])
        h = self.proj(self.in_norm(feats.to(self.proj.weight.dtype)) * m) * m  # (B, T, dim)
        h, mt = h.transpose(1, 2), m.transpose(1, 2)
        for blk in self.tcn:
            h = blk(h, mt)
        return self.norm(h.transpose(1, 2)) * m
