"""Score model: a real-valued backbone wrapped for complex spectrograms.

Output convention (SGMSE+ style "noise prediction"): the backbone output ``o`` estimates
``-z``, the negated unit-variance noise in ``x_t = mu_t x0 + sigma_t z``, and the score
is ``s(x_t, t) = o / sigma_t`` with ``sigma_t = sde.marginal(t)[1]`` (exposed as
:meth:`ScoreModel.sigma_fn`). The denoising score-matching loss
``|| sigma_t s + z ||^2`` is therefore ``|| o + z ||^2`` (:meth:`ScoreModel.raw` gives
``o`` directly), and Tweedie's estimate is ``(x_t + sigma_t^2 s) / mu_t =
(x_t + sigma_t o) / mu_t``.

Preconditioning (``precond: gaussian``, the default for new models; ``none`` feeds
``x_t`` to the backbone as it is). Following the idea of Karras et al., "Elucidating the
design space of diffusion-based generative models", NeurIPS 2022 (EDM), written here for
noise prediction: with ``v_t = mu_t^2 sigma_d^2 + sigma_t^2`` (``sigma_d`` =
``sigma_data``, the rms of a clean compressed spectrogram bin),

    o = -(sigma_t / v_t) x_t + (mu_t sigma_d / sqrt(v_t)) * F(x_t / sqrt(v_t), t)

The first term is the exact answer for zero-mean Gaussian data of variance
``sigma_d^2`` (a Wiener shrinkage); the backbone ``F`` sees unit-variance input and
learns a unit-scale residual. An untrained or briefly trained network therefore gives a
score that contracts the reverse diffusion like a Gaussian prior instead of letting it
drift, which matters for the short CPU trainings of the mini_av recipe.

Audio-visual models may make ``sigma_d`` a per-bin ``sigma_d (B, F, T)`` predicted from
the lips (``model_conf.lip_variance: {bands, hidden, context, gated, residual}``,
:class:`avse.nets.lip_variance.LipVariance`): the Gaussian part then becomes a
lip-conditioned spectral envelope with a per-bin ``v_t``; the residual's output scale
is per bin too (``residual: lip``) or the audio-only one (``constant``), and the
backbone input keeps the constant ``sigma_data`` scaling (so the backbone sees the same
input as in the audio-only model).

Complex ``(B, F, T)`` tensors become ``[re, im]`` channel pairs; optional extra complex
inputs ``x_extra (B, K, F, T)`` (for conditional SDEs) are appended as further pairs.
The frame axis is zero-padded on the right to the backbone's multiple and cropped back.

Audio-visual models (``model_conf.lip_encoder: resnet_tcn`` + ``lip_encoder_conf``) hold
a lip encoder (:mod:`avse.nets.lip_encoder`) as ``cond_encoder``; the backbone's
``cond_dim`` defaults to its embedding size. ``cond`` may then be raw lips
``(B, Tc, 88, 88)`` or, for a ``features`` encoder, visual features ``(B, Tc, in_dim)``
(encoded inside ``forward``: what training does, so DDP sees the encoder) or embeddings ``(B, Tc, D)`` from :meth:`ScoreModel.encode_cond` (inference
encodes once per utterance). ``cond_mask (B, Tc)`` bool marks present frames and
``cond_rel (B, Tc)`` is the lip reliability in [0, 1] used by ``gated_xattn``.

``ScoreModel.config`` (plain dict) is what a checkpoint stores:
``{"model", "model_conf" (fully resolved, incl. "x_extra"), "sde", "convention"}``;
``ScoreModel.from_config(cfg["model"], cfg["model_conf"], sde)`` rebuilds it and
:meth:`check_compatible` rejects a checkpoint of another architecture.
"""
import torch
import torch.nn as nn

from avse.errors import InputError
from avse.nets.lip_encoder import is_encoder_input
from avse.utils.config import plain as _plain

CONVENTION = "neg_noise_over_sigma"  # score = o(x_t, t) / sigma_t, o estimates -z
PRECONDS = ("gaussian", "none")
_SDE_IGNORED = {"t_eps", "T"}  # do not change the marginal, hence the meaning of the output




def describe_sde(sde) -> dict:
    """``{"name": <registry name or class>, <scalar hyper-parameters>...}``."""
    from avse.diffusion.sde import SDES
    name = next((n for n in SDES if SDES.get(n) is type(sde)), type(sde).__name__)
    conf = {k: v for k, v in sorted(vars(sde).items())
            if not k.startswith("_") and isinstance(v, (int, float, str, bool))}
    return {"name": name, **conf}


class ScoreModel(nn.Module):
    """``forward(x (B, F, T) complex, t (B,)) -> score (B, F, T) complex``.

    Args:
        backbone: real network ``(B, 2 * (1 + x_extra), F, T), (B,) [, cond, cond_mask]
            -> (B, 2, F, T)``; its ``multiple`` attribute (if any) sets the frame padding.
        sde: object with ``marginal(t) -> (mu_t, sigma_t)``.
        config: the stored description (built by :meth:`from_config`).
    """

    def __init__(self, backbone: nn.Module, sde, x_extra: int = 0, config: dict | None = None,
                 precond: str = "none", sigma_data: float = 0.1, cond_encoder: nn.Module | None = None,
                 lip_variance: nn.Module | None = None):
        super().__init__()
        if precond not in PRECONDS:
            raise InputError(f"ScoreModel: precond must be one of {PRECONDS}, got {precond!r}")
        if not sigma_data > 0:
            raise InputError(f"ScoreModel: sigma_data must be > 0, got {sigma_data}")
        self.backbone = backbone
        self.cond_encoder = cond_encoder
        if lip_variance is not None and (cond_encoder is None or precond != "gaussian"):
            raise InputError("ScoreModel: lip_variance needs a lip encoder and precond 'gaussian'")
        self.lip_variance = lip_variance
        self.sde = sde
        self.x_extra = int(x_extra)
        self.precond, self.sigma_data = precond, float(sigma_data)
        self.multiple = int(getattr(backbone, "multiple", 1))
        self.config = config or {}

    @classmethod
    def from_config(cls, model: str, model_conf: dict | None, sde) -> "ScoreModel":
        """Build ``MODELS[model](**model_conf)``. ``x_extra`` (sets the backbone's
        ``in_channels = 2 * (1 + x_extra)``), ``precond`` (default ``gaussian``) and
        ``sigma_data`` (0.1) are taken out of ``model_conf`` for the wrapper."""
        from avse.nets import MODELS
        conf = dict(model_conf or {})
        x_extra = int(conf.pop("x_extra", 0) or 0)
        precond = str(conf.pop("precond", "gaussian"))
        sigma_data = float(conf.pop("sigma_data", 0.1))
        lip_name = conf.pop("lip_encoder", None)
        lip_conf = conf.pop("lip_encoder_conf", None) or {}
        encoder = None
        if lip_name:
            from avse.nets.lip_encoder import build_lip_encoder
            encoder = build_lip_encoder(str(lip_name), dict(lip_conf))
            if not conf.get("cond_dim"):
                conf["cond_dim"] = encoder.dim
            elif int(conf["cond_dim"]) != encoder.dim:
                raise InputError(f"model_conf: cond_dim={conf['cond_dim']} differs from the lip encoder's "
                                 f"dim={encoder.dim}; leave cond_dim out to take the encoder's")
        elif lip_conf:
            raise InputError("model_conf: lip_encoder_conf given without lip_encoder")
        var_conf = conf.pop("lip_variance", None)
        if var_conf is True:
            var_conf = {}
        if var_conf is not None and var_conf is not False and not isinstance(var_conf, dict):
            raise InputError(f"model_conf.lip_variance must be a mapping of options (or true/null), got {var_conf!r}")
        in_ch = 2 * (1 + x_extra)
        if conf.get("in_channels", in_ch) != in_ch:
            raise InputError(f"model_conf: in_channels={conf['in_channels']} contradicts "
                             f"x_extra={x_extra} (needs {in_ch})")
        if conf.get("out_channels", 2) != 2:
            raise InputError(f"model_conf: a score model needs out_channels=2, got {conf['out_channels']}")
        conf["in_channels"] = in_ch
        backbone = MODELS.build(model, **conf)
        resolved = dict(getattr(backbone, "config", conf))
        resolved.update(x_extra=x_extra, precond=precond, sigma_data=sigma_data)
        if encoder is not None:
            resolved.update(lip_encoder=str(lip_name), lip_encoder_conf=dict(encoder.config))
        variance = None
        if isinstance(var_conf, dict):
            if encoder is None or precond != "gaussian":
                raise InputError("model_conf.lip_variance needs lip_encoder (an audio-visual prior) and "
                                 f"precond 'gaussian' (got precond {precond!r})")
            from avse.nets.fusion import FUSIONS
            from avse.nets.lip_variance import LipVariance
            vc = dict(var_conf)
            if "gated" not in vc:  # follow the fusion: the reliability gates both visual paths
                fusion = resolved.get("fusion")
                vc["gated"] = bool(fusion in FUSIONS and getattr(FUSIONS.get(fusion), "gated", False))
            variance = LipVariance(encoder.dim, sigma_data, **vc)
            resolved["lip_variance"] = dict(variance.config)
        config = _plain({"model": model, "model_conf": resolved, "sde": describe_sde(sde),
                         "convention": CONVENTION})
        return cls(backbone, sde, x_extra=x_extra, config=config, precond=precond,
                   sigma_data=sigma_data, cond_encoder=encoder, lip_variance=variance)

    @property
    def audio_visual(self) -> bool:
        """True when the model holds a lip encoder (it is conditioned on lip video)."""
        return self.cond_encoder is not None

    def encode_cond(self, lips: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Lip embeddings ``(B, Tc, D)`` of ``lips (B, Tc, H, W)`` (uint8 or float in
        [0, 255]; visual features ``(B, Tc, in_dim)`` for a ``features`` encoder); a frozen encoder (no parameter requiring grad) runs without autograd."""
        if self.cond_encoder is None:
            raise InputError("ScoreModel: this model is audio-only (no lip encoder); it takes no lips")
        if any(p.requires_grad for p in self.cond_encoder.parameters()):
            return self.cond_encoder(lips, mask)
        with torch.no_grad():
            return self.cond_encoder(lips, mask)

    @classmethod
    def from_stored(cls, config: dict, sde) -> "ScoreModel":
        """Rebuild from a checkpoint's ``config`` and check the SDE agrees with it."""
        if not isinstance(config, dict) or "model" not in config or "model_conf" not in config:
            raise InputError("checkpoint config lacks 'model'/'model_conf': not a ScoreModel checkpoint")
        m = cls.from_config(config["model"], config["model_conf"], sde)
        m.check_compatible(config)
        return m

    def check_compatible(self, config: dict) -> None:
        """Raise :class:`InputError` naming the differences if ``config`` (from a
        checkpoint) describes another architecture, output convention or SDE."""
        other = _plain(config or {})
        mine = self.config
        diffs = []
        for key in ("model", "convention"):
            if other.get(key) != mine.get(key):
                diffs.append(f"{key}: checkpoint {other.get(key)!r} vs model {mine.get(key)!r}")
        oc, mc = other.get("model_conf") or {}, mine.get("model_conf") or {}
        for k in sorted(set(oc) | set(mc)):
            if oc.get(k) != mc.get(k):
                diffs.append(f"model_conf.{k}: checkpoint {oc.get(k)!r} vs model {mc.get(k)!r}")
        osde, msde = other.get("sde") or {}, mine.get("sde") or {}
        for k in sorted((set(osde) | set(msde)) - _SDE_IGNORED):
            if osde.get(k) != msde.get(k):
                diffs.append(f"sde.{k}: checkpoint {osde.get(k)!r} vs model {msde.get(k)!r}")
        if diffs:
            raise InputError("checkpoint is incompatible with this score model: " + "; ".join(diffs))

    def sigma_fn(self, t: torch.Tensor | float) -> torch.Tensor:
        """``sigma_t`` of the SDE marginal (the score's divisor)."""
        return self.sde.marginal(t)[1]

    def _to_real(self, x: torch.Tensor, x_extra: torch.Tensor | None) -> torch.Tensor:
        if not x.is_complex() or x.dim() != 3:
            raise InputError(f"ScoreModel: x must be complex (B, F, T), got {tuple(x.shape)} {x.dtype}")
        chans = [x[:, None]]
        if self.x_extra:
            if x_extra is None:
                raise InputError(f"ScoreModel: model expects x_extra with {self.x_extra} complex channel(s)")
            e = x_extra[:, None] if x_extra.dim() == 3 else x_extra
            if e.shape[1] != self.x_extra or e.shape[0] != x.shape[0] or e.shape[-2:] != x.shape[-2:]:
                raise InputError(f"ScoreModel: x_extra must be (B, {self.x_extra}, F, T) like x "
                                 f"{tuple(x.shape)}, got {tuple(x_extra.shape)}")
            chans.append(e.to(x.dtype))
        elif x_extra is not None:
            raise InputError("ScoreModel: got x_extra but the model was built with x_extra=0")
        z = torch.cat(chans, dim=1)  # (B, K, F, T) complex
        B, K, Fq, T = z.shape
        return torch.stack([z.real, z.imag], dim=2).reshape(B, 2 * K, Fq, T)

    def raw(self, x: torch.Tensor, t: torch.Tensor | float, cond: torch.Tensor | None = None,
            cond_mask: torch.Tensor | None = None, x_extra: torch.Tensor | None = None,
            cond_rel: torch.Tensor | None = None) -> torch.Tensor:
        """Backbone output as complex ``(B, F, T)``: the estimate of ``-z``."""
        B, Fq, T = x.shape
        if cond is not None and self.cond_encoder is not None and is_encoder_input(self.cond_encoder, cond):
            cond = self.encode_cond(cond, cond_mask)  # raw lips (or features)
        tt = torch.as_tensor(t, dtype=torch.float32, device=x.device).reshape(-1)
        if self.precond == "gaussian":
            mu, sigma = (v.to(x.real.dtype).reshape(-1, 1, 1) for v in self.sde.marginal(tt))
            v = v0 = mu ** 2 * self.sigma_data ** 2 + sigma ** 2
            c_out = mu * self.sigma_data / v0.sqrt()
            if self.lip_variance is not None:  # per-bin sigma_d (B, F, T) from the lips
                log_sd = self.lip_variance(cond, cond_mask, cond_rel, Fq, T, B)
                if self.training:   # for the envelope likelihood of training (envelope_nll)
                    self.last_log_sd = log_sd
                sd = log_sd.exp().to(x.real.dtype)
                v = mu ** 2 * sd ** 2 + sigma ** 2
                if self.lip_variance.residual == "lip":
                    c_out = mu * sd / v.sqrt()
            inp = self._to_real(x / v0.sqrt(), x_extra)
        else:
            inp = self._to_real(x, x_extra)
        param = next(self.backbone.parameters(), None)
        if param is not None and inp.dtype != param.dtype:
            inp = inp.to(param.dtype)
        t = torch.as_tensor(t, dtype=inp.dtype, device=inp.device).reshape(-1)
        t = t.expand(B) if t.numel() == 1 else t
        extra = (-T) % self.multiple
        if extra:
            inp = nn.functional.pad(inp, (0, extra))
        kw = {} if cond is None else {"cond": cond, "cond_mask": cond_mask}
        if cond is not None and cond_rel is not None:
            kw["cond_rel"] = cond_rel
        out = self.backbone(inp, t, **kw)[..., :T].float()
        o = torch.complex(out[:, 0], out[:, 1])
        if self.precond == "gaussian":
            o = -(sigma / v) * x + c_out * o
        return o

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, cond: torch.Tensor | None = None,
                cond_mask: torch.Tensor | None = None, x_extra: torch.Tensor | None = None,
                cond_rel: torch.Tensor | None = None) -> torch.Tensor:
        """Score ``(B, F, T)`` complex64 = :meth:`raw` ``/ sigma_t``."""
        o = self.raw(x, t, cond, cond_mask, x_extra, cond_rel)
        tt = torch.as_tensor(t, dtype=torch.float32, device=o.device).reshape(-1)
        sigma = self.sigma_fn(tt).to(o.real.dtype)
        return o / sigma.reshape(-1, 1, 1)

    def x0_estimate(self, x: torch.Tensor, t: torch.Tensor | float, cond: torch.Tensor | None = None,
                    cond_mask: torch.Tensor | None = None, x_extra: torch.Tensor | None = None,
                    cond_rel: torch.Tensor | None = None):
        """Tweedie's posterior mean ``(x + sigma_t^2 * score) / mu_t`` and the score.

        Returns ``(x0_hat (B, F, T), score (B, F, T))`` complex; one network call.
        """
        s = self.forward(x, t, cond, cond_mask, x_extra, cond_rel)
        tt = torch.as_tensor(t, dtype=torch.float32, device=s.device).reshape(-1)
        mu, sigma = self.sde.marginal(tt)
        mu, sigma = mu.to(s.real.dtype).reshape(-1, 1, 1), sigma.to(s.real.dtype).reshape(-1, 1, 1)
        return (x + sigma ** 2 * s) / mu, s
