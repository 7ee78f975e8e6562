"""Training objectives: what the trainer optimises for each family of prior.

The trainer (:mod:`avse.train.trainer`) is the same loop for every prior; an
:class:`Objective` (chosen by :func:`objective_for` from the config's ``model:``) builds
the model, draws the random numbers of a batch, computes the loss and describes the
exported model:

* :class:`DSMObjective`: diffusion score models (``model: ncsnpp``; denoising score
  matching, see :func:`dsm_loss`).
* :class:`VAEObjective`: VAE priors (``model: vae | rvae``, :mod:`avse.nets.vae`;
  negative ELBO per bin: Itakura-Saito reconstruction + KL, ``beta`` weighting the KL).

Random draws of a step come from one generator seeded by the trainer
(``stable_hash(seed, <objective>, step, rank)``), so a resumed run sees the same numbers.
"""
from abc import ABC, abstractmethod
from typing import Any, Dict

import torch

from avse.errors import InputError
from avse.lips.backends import LIP_FPS


def dsm_loss(model, sde, x0: torch.Tensor, t: torch.Tensor, z: torch.Tensor,
             cond: Dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Denoising score-matching loss (scalar) of ``model`` on ``x0`` (B, F, T) complex;
    ``cond``: keyword arguments of the model (``cond``, ``cond_mask``, ``cond_rel``)."""
    x_t, z, sigma = sde.perturb(x0, t, z)
    score = model(x_t, t, **cond) if cond else model(x_t, t)
    if score.dtype != torch.complex64 and score.is_complex():
        score = score.to(torch.complex64)
    err = sigma * score + z
    return (err.real.float() ** 2 + err.imag.float() ** 2).mean()


def dsm_draws(sde, g: torch.Generator, shape: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """``t (B,)`` uniform in ``[t_eps, T]`` and ``z`` (B, F, T) complex white noise from ``g``."""
    t = sde.t_eps + (sde.T - sde.t_eps) * torch.rand(shape[0], generator=g)
    return t, torch.randn(tuple(shape), dtype=torch.complex64, generator=g)


def visual_rates(cfg: Dict[str, Any], hop: int) -> Dict[str, float]:
    """``spec_fps = fs / hop`` and ``cond_fps`` (the lip rate) of a training config."""
    return {"spec_fps": float(cfg["fs"]) / hop, "cond_fps": LIP_FPS}


class Objective(ABC):
    """One family of prior: its model, random draws, loss and exported description."""

    name: str = ""
    loss_label: str = "loss"
    data_init: bool = False   # prepare() wants training crops

    def __init__(self, cfg: Dict[str, Any], hop: int):
        self.cfg, self.hop = cfg, int(hop)

    @abstractmethod
    def build_model(self) -> torch.nn.Module:
        """The model of ``cfg['model']`` / ``cfg['model_conf']``."""

    @abstractmethod
    def draws(self, g: torch.Generator, shape: tuple) -> tuple:
        """The random tensors (on the CPU) of a batch of spectrograms of ``shape``."""

    @abstractmethod
    def loss(self, model, x0: torch.Tensor, draws: tuple, cond: Dict[str, torch.Tensor] | None) -> torch.Tensor:
        """Scalar loss of the batch ``x0`` (B, F, T) complex."""

    @abstractmethod
    def export_info(self, model) -> Dict[str, Any]:
        """What :func:`avse.nets.storage.export_model` stores besides the weights."""

    def prepare(self, model, x0: torch.Tensor) -> None:
        """Data-dependent initialisation from fixed training crops (none by default)."""

    def check_init_model(self, meta: Dict[str, Any]) -> str | None:
        """Why the prior ``init_model`` (its stored metadata) cannot initialise this
        training, or None."""
        return None


class DSMObjective(Objective):
    """Denoising score matching of a diffusion prior (SGMSE+, UDiffSE)."""

    name, loss_label = "dsm", "DSM loss"

    def __init__(self, cfg, hop):
        from avse.diffusion.sde import SDES
        super().__init__(cfg, hop)
        self.sde = SDES.build(cfg["sde"], **(cfg.get("sde_conf") or {}))
        self.envelope_nll = float(cfg.get("envelope_nll") or 0.0)
        lv = (cfg.get("model_conf") or {}).get("lip_variance")
        if self.envelope_nll < 0 or (self.envelope_nll > 0 and not (cfg.get("lip_encoder") and lv)):
            raise InputError("envelope_nll must be >= 0 and needs an audio-visual prior with "
                             "model_conf.lip_variance (the envelope it trains)")

    def build_model(self):
        """The score model; an audio-visual model's visual paths (``fusion_conf``,
        ``lip_variance``) get this training's frame rates unless the config sets them:
        the modules' 125 / 25 frames/s defaults hold only for 16 kHz with hop 128."""
        from avse.nets.score_model import ScoreModel

        cfg = self.cfg
        conf = dict(cfg.get("model_conf") or {})
        if cfg.get("lip_encoder"):
            for k in ("lip_encoder", "lip_encoder_conf"):
                if k in conf:
                    raise InputError(f"give {k} at the top level of the training config, not in model_conf")
            conf.update(lip_encoder=cfg["lip_encoder"], lip_encoder_conf=dict(cfg.get("lip_encoder_conf") or {}))
            rates = visual_rates(cfg, self.hop)
            conf["fusion_conf"] = {**rates, **dict(conf.get("fusion_conf") or {})}
            if isinstance(conf.get("lip_variance"), dict) or conf.get("lip_variance") is True:
                lv = conf["lip_variance"]
                conf["lip_variance"] = {**rates, **(lv if isinstance(lv, dict) else {})}
        return ScoreModel.from_config(cfg["model"], conf, self.sde)

    def draws(self, g, shape):
        return dsm_draws(self.sde, g, shape)

    def loss(self, model, x0, draws, cond):
        """DSM loss, plus in training ``envelope_nll`` x the Gaussian negative log-likelihood
        per bin of the clean crop under the lip-predicted envelope,
        ``mean(log sigma_d^2 + |x0|^2 / sigma_d^2)`` (a direct target for the lip-variance
        head, whose maximum-likelihood answer, the conditional power, is also what the
        Wiener part of the denoiser wants)."""
        t, z = draws
        loss = dsm_loss(model, self.sde, x0, t, z, cond)
        inner = getattr(model, "module", model)
        if self.envelope_nll > 0 and inner.training:
            log_sd = inner.last_log_sd.float()
            power = x0.real.float() ** 2 + x0.imag.float() ** 2
            loss = loss + self.envelope_nll * (2 * log_sd + power * torch.exp(-2 * log_sd)).mean()
        return loss

    def export_info(self, model):
        c = self.cfg
        return {"model": getattr(model, "config", {"model": c["model"], "model_conf": c.get("model_conf")}),
                "sde": {"name": c["sde"], "conf": dict(c.get("sde_conf") or {})}}

    def check_init_model(self, meta):
        want = {"name": self.cfg["sde"], "conf": dict(self.cfg.get("sde_conf") or {})}
        return None if meta.get("sde") == want else f"its front-end or SDE differs: SDE {meta.get('sde')}, not {want}"


class VAEObjective(Objective):
    """Negative ELBO of a VAE prior per bin: ``IS + beta * KL`` (:mod:`avse.nets.vae`).
    The front-end must be linear (``frontend_conf: {alpha: 1, beta: 1}``): the model's
    likelihood is a Gaussian on the STFT itself."""

    name, loss_label, data_init = "vae", "-ELBO per bin", True

    def __init__(self, cfg, hop):
        super().__init__(cfg, hop)
        fe = dict(cfg.get("frontend_conf") or {})
        if float(fe.get("alpha", 0.5)) != 1.0 or float(fe.get("beta", 0.15)) != 1.0:
            raise InputError("a VAE prior models the linear STFT: set frontend_conf {alpha: 1, beta: 1} "
                             f"(got {fe})")
        self.beta = float(cfg.get("kl_weight", 1.0))
        if not self.beta >= 0:
            raise InputError(f"kl_weight must be >= 0, got {self.beta}")

    def build_model(self):
        from avse.dsp.stft import SpectralFrontEnd
        from avse.nets.vae import SpeechVAE

        cfg = self.cfg
        conf = dict(cfg.get("model_conf") or {})
        conf["n_freq"] = SpectralFrontEnd(**dict(cfg.get("frontend_conf") or {})).n_freq
        conf.update(visual_rates(cfg, self.hop))
        if cfg.get("lip_encoder"):
            conf.update(lip_encoder=cfg["lip_encoder"], lip_encoder_conf=dict(cfg.get("lip_encoder_conf") or {}))
        model = SpeechVAE.from_config(cfg["model"], conf)
        self.latent = model.latent
        return model

    def draws(self, g, shape):
        return (torch.randn((shape[0], self.latent, shape[-1]), generator=g),)

    def loss(self, model, x0, draws, cond):
        rec, kl = model(x0, draws[0].to(x0.device), **(cond or {}))
        return rec + self.beta * kl

    def prepare(self, model, x0):
        model.init_from_data((x0.real.float() ** 2 + x0.imag.float() ** 2).cpu())

    def export_info(self, model):
        return {"model": model.config, "sde": None}

    def check_init_model(self, meta):
        return "init_model is for diffusion priors; a VAE prior trains from scratch"


def objective_for(cfg: Dict[str, Any], hop: int) -> Objective:
    """:class:`VAEObjective` for ``model`` in :data:`avse.nets.vae.VAES`, else DSM."""
    from avse.nets.vae import VAES
    return (VAEObjective if cfg["model"] in VAES else DSMObjective)(cfg, hop)
