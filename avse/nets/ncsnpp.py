"""NCSN++ U-Net score backbone (Song et al., ICLR 2021), for complex spectrograms.

Written from the paper's description, with the choices SGMSE+ (Richter et al., 2023)
uses: Fourier time embedding, BigGAN residual blocks with FIR [1, 3, 3, 1]
resampling, ``1/sqrt(2)`` skip rescaling, self-attention at chosen resolutions,
progressive input ("input_skip": the down-sampled input is added after every
down-sampling, through a 1x1 conv) and progressive output ("output_skip": every
decoder level adds its own 3x3 output head to the up-sampled running output).

Shapes: input ``x (B, in_channels, F, T)`` real (complex channels as [re, im] pairs),
``t (B,)`` in [0, 1] -> ``(B, out_channels, F, T)``. ``F`` must be a multiple of
``patch[0] * 2 ** (len(ch_mult) - 1)`` and ``T`` of ``patch[1] * 2 ** (len(ch_mult) - 1)``
(:attr:`NCSNpp.multiple`). Attention placement is decided at construction from the
nominal frequency size ``resolution`` (256): level ``i`` has resolution
``resolution // (patch[0] * 2 ** i)``.

Patches (``patch = (pf, pt)``, default ``(1, 1)``: off): the input is rearranged
losslessly into non-overlapping ``pf x pt`` TF patches (space-to-depth, as the patch
embedding of vision transformers) before the U-Net, and the output is rearranged back.
The U-Net then runs on ``pf * pt`` times fewer positions, which is what makes the
``tiny`` preset fast enough for posterior sampling on a CPU.

Optional conditioning (``cond_dim`` set): fusion modules from
:data:`avse.nets.fusion.FUSIONS` after the first conv, after every down-sampling, at
the bottleneck and at every decoder level; ``cond (B, Tc, D)``, ``cond_mask (B, Tc)``,
``cond_rel (B, Tc)`` (lip reliability, for ``gated_xattn``).
With ``cond_dim`` None/0 no fusion module exists (no parameters, no compute).
"""
import copy

import torch
import torch.nn as nn

from avse.errors import InputError
from avse.nets.fusion import FUSIONS
from avse.nets.layers import (AttnBlock, FirDown, FirUp, ResBlockBigGAN, TimeEmbedding,
                              conv1x1, conv3x3, group_norm)

DEFAULTS = dict(
    nf=128, ch_mult=(1, 1, 2, 2, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,),
    mid_attn=True, resolution=256, dropout=0.0, fir_kernel=(1, 3, 3, 1), skip_rescale=True,
    fourier_scale=16.0, progressive_input=True, progressive_output=True,
    in_channels=2, out_channels=2, cond_dim=None, fusion="concat", fusion_conf={},
    patch=(1, 1),
)

#: Named architectures; overrides passed to :class:`NCSNpp` are applied on top.
PRESETS = {
    # CPU / CI: 1.4 M parameters on 4 x 4 TF patches (16 x fewer positions than the
    # full-resolution networks): about 2 ms of CPU per second of audio and sample.
    "tiny": dict(nf=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1, attn_resolutions=(),
                 mid_attn=False, patch=(4, 4)),
    # SGMSE+ "M" variant used for AV work: 28 M parameters.
    "ncsnpp_28m": dict(nf=128, ch_mult=(1, 2, 2, 2), num_res_blocks=1, attn_resolutions=(),
                       mid_attn=False),
    # Full SGMSE+ / UDiffSE backbone: 65 M parameters.
    "ncsnpp_65m": dict(nf=128, ch_mult=(1, 1, 2, 2, 2, 2, 2), num_res_blocks=2,
                       attn_resolutions=(16,), mid_attn=True),
}


def resolve_config(preset: str | None = None, **overrides) -> dict:
    """Defaults <- preset <- overrides, as a plain dict of :class:`NCSNpp` arguments."""
    cfg = copy.deepcopy(DEFAULTS)
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"unknown ncsnpp preset {preset!r}; choose from: {', '.join(sorted(PRESETS))}")
        cfg.update(copy.deepcopy(PRESETS[preset]))
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise InputError(f"ncsnpp: unknown option(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg.update(copy.deepcopy(overrides))
    cfg["ch_mult"] = tuple(int(c) for c in cfg["ch_mult"])
    cfg["attn_resolutions"] = tuple(int(r) for r in cfg["attn_resolutions"])
    cfg["fir_kernel"] = tuple(cfg["fir_kernel"])
    patch = cfg["patch"]
    patch = (patch, patch) if isinstance(patch, int) else tuple(int(p) for p in patch)
    if len(patch) != 2 or min(patch) < 1:
        raise InputError(f"ncsnpp: patch must be (pf, pt) with positive ints, got {cfg['patch']!r}")
    cfg["patch"] = patch
    cfg["cond_dim"] = int(cfg["cond_dim"]) if cfg["cond_dim"] else None
    cfg["fusion_conf"] = dict(cfg["fusion_conf"] or {})
    return cfg


class NCSNpp(nn.Module):
    """NCSN++ U-Net; ``NCSNpp(preset="tiny", **overrides)``. See the module docstring.

    ``self.config`` holds the fully resolved arguments: ``NCSNpp(**config)`` rebuilds
    the same architecture even if the presets change later.
    """

    def __init__(self, preset: str | None = None, **overrides):
        super().__init__()
        cfg = resolve_config(preset, **overrides)
        self.config = cfg
        nf, mult, nrb = cfg["nf"], cfg["ch_mult"], cfg["num_res_blocks"]
        self.num_levels = L = len(mult)
        self.patch = pf, pt = cfg["patch"]
        self.multiple = pt * 2 ** (L - 1)  # frame-axis multiple (ScoreModel pads to it)
        self.freq_multiple = pf * 2 ** (L - 1)
        self.cond_dim = cfg["cond_dim"]
        temb_dim = 4 * nf
        res_kw = dict(temb_dim=temb_dim, dropout=cfg["dropout"], fir_kernel=cfg["fir_kernel"],
                      skip_rescale=cfg["skip_rescale"])
        attn = lambda ch: AttnBlock(ch, skip_rescale=cfg["skip_rescale"])  # noqa: E731
        has_attn = [cfg["resolution"] // (pf * 2 ** i) in cfg["attn_resolutions"] for i in range(L)]
        c_in = cfg["in_channels"] * pf * pt

        self.temb = TimeEmbedding(nf, cfg["fourier_scale"], temb_dim)
        self.conv_in = conv3x3(c_in, nf)
        fusions = [] if self.cond_dim else None

        def add_fusion(ch, level):
            if fusions is not None:
                fusions.append(FUSIONS.build(cfg["fusion"], channels=ch, cond_dim=self.cond_dim,
                                             time_stride=pt * 2 ** level, level=level,
                                             **cfg["fusion_conf"]))

        add_fusion(nf, 0)
        # Encoder
        self.down_blocks, self.down_attn = nn.ModuleList(), nn.ModuleList()
        self.downsample, self.in_combine = nn.ModuleList(), nn.ModuleList()
        skip_ch, ch = [nf], nf
        for i in range(L):
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(nrb):
                blocks.append(ResBlockBigGAN(ch, nf * mult[i], **res_kw))
                ch = nf * mult[i]
                attns.append(attn(ch) if has_attn[i] else nn.Identity())
                skip_ch.append(ch)
            self.down_blocks.append(blocks)
            self.down_attn.append(attns)
            if i < L - 1:
                self.downsample.append(ResBlockBigGAN(ch, ch, down=True, **res_kw))
                if cfg["progressive_input"]:
                    self.in_combine.append(conv1x1(c_in, ch))
                add_fusion(ch, i + 1)
                skip_ch.append(ch)
        self.pyramid_down = FirDown(kernel=cfg["fir_kernel"]) if cfg["progressive_input"] else None
        # Bottleneck
        self.mid1 = ResBlockBigGAN(ch, ch, **res_kw)
        self.mid_attn = attn(ch) if cfg["mid_attn"] else nn.Identity()
        self.mid2 = ResBlockBigGAN(ch, ch, **res_kw)
        add_fusion(ch, L - 1)
        # Decoder (levels L-1 .. 0)
        self.up_blocks, self.up_attn, self.upsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.out_heads = nn.ModuleList()
        c_out = cfg["out_channels"] * pf * pt
        for i in reversed(range(L)):
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(nrb + 1):
                blocks.append(ResBlockBigGAN(ch + skip_ch.pop(), nf * mult[i], **res_kw))
                ch = nf * mult[i]
            attns.append(attn(ch) if has_attn[i] else nn.Identity())
            self.up_blocks.append(blocks)
            self.up_attn.append(attns)
            add_fusion(ch, i)
            if cfg["progressive_output"] or i == 0:
                self.out_heads.append(nn.Sequential(group_norm(ch), nn.SiLU(), conv3x3(ch, c_out)))
            if i > 0:
                self.upsample.append(ResBlockBigGAN(ch, ch, up=True, **res_kw))
        assert not skip_ch
        self.pyramid_up = FirUp(kernel=cfg["fir_kernel"]) if cfg["progressive_output"] else None
        self.fusions = nn.ModuleList(fusions) if fusions is not None else None

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None,
                cond_mask: torch.Tensor | None = None, cond_rel: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, in_channels, F, T)``, ``t (B,)`` -> ``(B, out_channels, F, T)``; optional
        ``cond (B, Tc, D)``, ``cond_mask (B, Tc)`` bool, ``cond_rel (B, Tc)`` in [0, 1]."""
        B, C, Fq, T = x.shape
        if C != self.config["in_channels"]:
            raise InputError(f"ncsnpp: expected {self.config['in_channels']} input channels, got {C}")
        if Fq % self.freq_multiple or T % self.multiple:
            raise InputError(f"ncsnpp: F={Fq} must be a multiple of {self.freq_multiple} and T={T} of "
                             f"{self.multiple} (pad the frame axis, e.g. SpectralFrontEnd.pad_frames)")
        if cond is not None and self.fusions is None:
            raise InputError("ncsnpp: got `cond` but the model was built without cond_dim")
        if cond is not None and (cond.dim() != 3 or cond.shape[0] != B or cond.shape[2] != self.cond_dim):
            raise InputError(f"ncsnpp: cond must be (B={B}, Tc, D={self.cond_dim}), got {tuple(cond.shape)}")
        t = torch.as_tensor(t, device=x.device).reshape(-1).float()
        if t.numel() == 1:
            t = t.expand(B)
        elif t.numel() != B:
            raise InputError(f"ncsnpp: t must have 1 or B={B} values, got {t.numel()}")
        fusions = iter(self.fusions) if (cond is not None) else None

        def fuse(h):
            return next(fusions)(h, cond, cond_mask, cond_rel) if fusions is not None else h

        temb = self.temb(t)
        x = self._to_patches(x)
        pyramid = x
        h = fuse(self.conv_in(x))
        hs = [h]
        for i in range(self.num_levels):
            for block, att in zip(self.down_blocks[i], self.down_attn[i]):
                h = att(block(h, temb))
                hs.append(h)
            if i < self.num_levels - 1:
                h = self.downsample[i](h, temb)
                if self.pyramid_down is not None:
                    pyramid = self.pyramid_down(pyramid)
                    h = (h + self.in_combine[i](pyramid))
                h = fuse(h)
                hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        h = fuse(h)
        out = None
        for j in range(self.num_levels):
            i = self.num_levels - 1 - j
            for block in self.up_blocks[j]:
                h = block(torch.cat([h, hs.pop()], dim=1), temb)
            h = self.up_attn[j][0](h)
            h = fuse(h)
            if self.pyramid_up is not None:
                head = self.out_heads[j](h)
                out = head if out is None else self.pyramid_up(out) + head
            elif i == 0:
                out = self.out_heads[0](h)
            if i > 0:
                h = self.upsample[j](h, temb)
        return self._from_patches(out)

    def _to_patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, F, T) -> (B, C * pf * pt, F / pf, T / pt)`` (identity for 1 x 1)."""
        pf, pt = self.patch
        if pf == pt == 1:
            return x
        B, C, Fq, T = x.shape
        x = x.reshape(B, C, Fq // pf, pf, T // pt, pt).permute(0, 1, 3, 5, 2, 4)
        return x.reshape(B, C * pf * pt, Fq // pf, T // pt)

    def _from_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_to_patches`."""
        pf, pt = self.patch
        if pf == pt == 1:
            return x
        B, Cp, Fp, Tp = x.shape
        C = Cp // (pf * pt)
        x = x.reshape(B, C, pf, pt, Fp, Tp).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(B, C, Fp * pf, Tp * pt)
