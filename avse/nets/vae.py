"""Variational autoencoders of clean-speech power spectra: the VAE baselines of the line.

Generative model (Leglaive, Girin, Horaud, "A variance modeling framework based on
variational autoencoders for speech enhancement", MLSP 2018): per STFT bin the clean
speech is zero-mean complex Gaussian, ``s_ft | z ~ CN(0, v_ft(z))``, with the variance
``v = exp(decoder(z))`` and latent frames ``z_t`` in ``R^L``. The encoder gives
``q(z | s) = N(mu, diag exp(logvar))``; training maximises the ELBO, i.e. minimises
``sum_f d_IS(|s_ft|^2 | v_ft) + KL(q(z_t | .) || p(z_t | .))`` per frame (the
Itakura-Saito divergence is the negative Gaussian log-likelihood up to a constant).

Registered in :data:`VAES` (``model:`` of a training config):

* ``vae``: frame-wise (Leglaive et al. 2018: one hidden layer of ``hidden`` tanh units in
  the encoder and decoder, ``L = 32``); ``z_t ~ N(0, I)``. With a lip encoder it is the
  audio-visual conditional VAE, AV-CVAE (Sadeghi, Leglaive, Alameda-Pineda, Girin,
  Horaud, "Audio-visual speech enhancement using conditional variational auto-encoders",
  IEEE/ACM TASLP 2020): the encoder and the decoder both see the lip embeddings, and
  the prior of ``z_t`` is a Gaussian predicted from them, ``p(z_t | v)``.
* ``rvae``: a dynamical VAE, the RVAE of Leglaive, Alameda-Pineda, Girin, Horaud ("A
  recurrent variational autoencoder for speech enhancement", ICASSP 2020) in its
  non-causal form: ``z_t ~ N(0, I)`` independently (or ``p(z_t | v)``), and each
  ``v_ft`` depends on the whole sequence ``z_{1:T}``, the encoder on the whole
  ``s_{1:T}``. The paper's bidirectional LSTMs are replaced by non-causal dilated
  temporal convolution networks (TCN: ``layers`` residual blocks, kernel 3, dilation
  ``2^i``; receptive field ``1 + 2 (2^layers - 1)`` frames), which train and run several
  times faster on a CPU. RVAE rather than the DKF (Krishnan et al. 2017): its prior on
  ``z`` is the same frame-wise Gaussian as the VAE's, so the same variational EM
  (:mod:`avse.enhance.vae_em`) serves both, whereas a DKF's Markov prior would need a
  sequential E-step.

Audio-visual conditioning (``lip_encoder`` + ``lip_encoder_conf``, as in the diffusion
prior): lips ``(B, Tc, H, W)`` are encoded to ``(B, Tc, D)`` by the same lip encoders
(:mod:`avse.nets.lip_encoder`) and fused into the encoder's and the decoder's first
hidden layer ``(B, H, T)`` by the same fusion modules (:data:`avse.nets.fusion.FUSIONS`,
applied to ``(B, H, 1, T)``): ``concat`` (Sadeghi et al. 2020), ``xattn`` or
``gated_xattn`` (attention; the gated one scales the visual stream per frame by the
lip-reliability score ``cond_rel``). The prior network reads the frame-aligned
embeddings (:func:`avse.nets.fusion.align_cond`) and its output is scaled by the frame's
presence (times its reliability for gated fusion): no or unreliable video gives back
``N(0, I)``. Its last layer starts at zero, so an untrained AV model is an audio-only one.

Shapes: ``x`` (B, F, T) complex linear STFT (front-end without compression), powers
``(B, F, T)`` float, latents ``(B, L, T)``.
"""
import math

import torch
import torch.nn as nn

from avse.errors import InputError
from avse.lips.backends import LIP_FPS
from avse.nets.fusion import FUSIONS, align_cond
from avse.nets.layers import group_norm
from avse.nets.lip_encoder import is_encoder_input
from avse.utils.config import plain
from avse.utils.registry import Registry

VAES = Registry("vae model")
POWER_FLOOR = 1e-10
LOGVAR_RANGE = (-30.0, 20.0)


class DilatedBlock(nn.Module):
    """Residual non-causal dilated convolution: ``h + W2 gelu(GN(W1 h))`` (B, H, T)."""

    def __init__(self, channels: int, dilation: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.norm = group_norm(channels)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.out(torch.nn.functional.gelu(self.norm(self.conv(h))))


def kl_gaussians(mu_q, lv_q, mu_p, lv_p) -> torch.Tensor:
    """``KL(N(mu_q, e^lv_q) || N(mu_p, e^lv_p))`` per element."""
    return 0.5 * (torch.exp(lv_q - lv_p) + (mu_q - mu_p) ** 2 * torch.exp(-lv_p) - 1.0 - lv_q + lv_p)


def is_divergence(power: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Itakura-Saito divergence ``p / v - log(p / v) - 1`` per bin (``v = e^logvar``)."""
    r = power.clamp_min(POWER_FLOOR) * torch.exp(-logvar)
    return r - torch.log(r) - 1.0


class SpeechVAE(nn.Module):
    """Base of :data:`VAES` (see the module docstring).

    Args:
        n_freq: frequency bins ``F`` of the front-end.
        latent: ``L``; hidden: ``H`` (width of the hidden layers).
        layers: dilated residual blocks per network (0: frame-wise).
        lip_encoder, lip_encoder_conf: an audio-visual model's lip encoder.
        fusion, fusion_conf: how the lips enter the encoder and decoder.
        prior_hidden: width of the lip-conditioned prior network.
        spec_fps, cond_fps: STFT and video frame rates (frames/s) for the alignment.
    """

    def __init__(self, n_freq: int, latent: int = 32, hidden: int = 128, layers: int = 0,
                 lip_encoder: str | None = None, lip_encoder_conf: dict | None = None,
                 fusion: str = "concat", fusion_conf: dict | None = None, prior_hidden: int = 64,
                 spec_fps: float = 62.5, cond_fps: float = LIP_FPS, name: str = "vae"):
        super().__init__()
        if min(int(n_freq), int(latent), int(hidden)) < 1 or int(layers) < 0:
            raise InputError(f"{name}: need n_freq, latent, hidden >= 1 and layers >= 0")
        self.n_freq, self.latent, self.hidden, self.layers = int(n_freq), int(latent), int(hidden), int(layers)
        self.spec_fps, self.cond_fps = float(spec_fps), float(cond_fps)
        self.register_buffer("in_mean", torch.zeros(self.n_freq))
        self.register_buffer("in_std", torch.ones(self.n_freq))
        self.enc_in, self.enc_body = self._trunk(self.n_freq)
        self.enc_out = nn.Conv1d(self.hidden, 2 * self.latent, 1)
        self.dec_in, self.dec_body = self._trunk(self.latent)
        self.dec_out = nn.Conv1d(self.hidden, self.n_freq, 1)
        self.cond_encoder = None
        conf = {"n_freq": self.n_freq, "latent": self.latent, "hidden": self.hidden, "layers": self.layers,
                "spec_fps": self.spec_fps, "cond_fps": self.cond_fps}
        if lip_encoder:
            from avse.nets.lip_encoder import build_lip_encoder
            if fusion not in FUSIONS:
                raise InputError(f"{name}: unknown fusion {fusion!r}; choose from: {', '.join(FUSIONS)}")
            self.cond_encoder = build_lip_encoder(str(lip_encoder), dict(lip_encoder_conf or {}))
            D = self.cond_encoder.dim
            fconf = {"cond_fps": self.cond_fps, "spec_fps": self.spec_fps, **dict(fusion_conf or {})}
            self.enc_fusion = FUSIONS.build(fusion, channels=self.hidden, cond_dim=D, time_stride=1, n_freq=1, **fconf)
            self.dec_fusion = FUSIONS.build(fusion, channels=self.hidden, cond_dim=D, time_stride=1, n_freq=1, **fconf)
            self.gated = bool(getattr(self.enc_fusion, "gated", False))
            self.prior_net = nn.Sequential(nn.Linear(D + 1, int(prior_hidden)), nn.Tanh(),
                                           nn.Linear(int(prior_hidden), 2 * self.latent))
            nn.init.zeros_(self.prior_net[-1].weight)
            nn.init.zeros_(self.prior_net[-1].bias)
            conf.update(lip_encoder=str(lip_encoder), lip_encoder_conf=dict(self.cond_encoder.config),
                        fusion=fusion, fusion_conf=dict(fusion_conf or {}), prior_hidden=int(prior_hidden))
        self.config = plain({"model": name, "model_conf": conf, "format": "vae"})

    def _trunk(self, n_in: int):
        first = nn.Conv1d(n_in, self.hidden, 1)
        body = nn.Sequential(*[DilatedBlock(self.hidden, 2 ** i) for i in range(self.layers)])
        return first, body

    # ------------------------------------------------------------ conditioning
    @property
    def audio_visual(self) -> bool:
        """True when the model holds a lip encoder (it is conditioned on lip video)."""
        return self.cond_encoder is not None

    def encode_cond(self, lips: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Lip embeddings ``(B, Tc, D)`` of ``lips (B, Tc, H, W)`` in [0, 255]."""
        if self.cond_encoder is None:
            raise InputError(f"{self.config['model']}: an audio-only model takes no lips")
        if any(p.requires_grad for p in self.cond_encoder.parameters()):
            return self.cond_encoder(lips, mask)
        with torch.no_grad():
            return self.cond_encoder(lips, mask)

    def visual(self, cond=None, cond_mask=None, cond_rel=None) -> dict | None:
        """Normalised conditioning: embeddings ``(B, Tc, D)`` (raw lips are encoded)."""
        if self.cond_encoder is None:
            if cond is not None:
                raise InputError(f"{self.config['model']}: an audio-only model takes no lips")
            return None
        if cond is None:
            raise InputError(f"{self.config['model']}: an audio-visual model needs cond (lips or embeddings)")
        emb = self.encode_cond(cond, cond_mask) if is_encoder_input(self.cond_encoder, cond) else cond
        return {"cond": emb, "cond_mask": cond_mask, "cond_rel": cond_rel if self.gated else None}

    def _fuse(self, fusion, h: torch.Tensor, vis: dict | None) -> torch.Tensor:
        if vis is None:
            return h
        return fusion(h[:, :, None, :], **vis)[:, :, 0, :]

    # ----------------------------------------------------------------- parts
    def features(self, power: torch.Tensor) -> torch.Tensor:
        """Encoder input: standardised log power ``(B, F, T)``."""
        return (torch.log(power.clamp_min(POWER_FLOOR)) - self.in_mean[:, None]) / self.in_std[:, None]

    def encode(self, power: torch.Tensor, vis: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z | s)``: ``(mu, logvar)`` (B, L, T) of a power spectrogram (B, F, T)."""
        h = torch.tanh(self.enc_in(self.features(power)))
        h = self.enc_body(self._fuse(getattr(self, "enc_fusion", None), h, vis))
        mu, lv = self.enc_out(h).chunk(2, dim=1)
        return mu, lv.clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor, vis: dict | None = None) -> torch.Tensor:
        """Log speech variance ``log v`` (B, F, T) of latents ``z`` (B, L, T)."""
        h = torch.tanh(self.dec_in(z))
        h = self.dec_body(self._fuse(getattr(self, "dec_fusion", None), h, vis))
        return self.dec_out(h).clamp(*LOGVAR_RANGE)

    def prior(self, T: int, vis: dict | None = None, like: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """``p(z_t | v)``: ``(mu, logvar)`` (B, L, T); zeros (``N(0, I)``) without lips."""
        if vis is None:
            ref = like if like is not None else self.in_mean
            shape = (like.shape[0] if like is not None else 1, self.latent, T)
            zero = torch.zeros(shape, device=ref.device, dtype=ref.dtype)
            return zero, zero
        feat, present = align_cond(vis["cond"], vis["cond_mask"], T, self.cond_fps, self.spec_fps)
        gate = present
        if vis.get("cond_rel") is not None:
            rel, _ = align_cond(vis["cond_rel"][..., None].to(feat.dtype), vis["cond_mask"], T,
                                self.cond_fps, self.spec_fps)
            gate = gate * rel[..., 0]
        out = self.prior_net(torch.cat([feat, present[..., None]], dim=-1)) * gate[..., None]
        mu, lv = out.transpose(1, 2).chunk(2, dim=1)
        return mu, lv.clamp(*LOGVAR_RANGE)

    @torch.no_grad()
    def init_from_data(self, power: torch.Tensor) -> None:
        """Data-dependent initialisation from clean powers ``(B, F, T)``: the encoder's
        input standardisation and the decoder's output bias (the mean log power per
        bin), so training starts at the right level instead of spending its first
        thousands of steps moving one bias."""
        lp = torch.log(power.clamp_min(POWER_FLOOR)).transpose(0, 1).reshape(self.n_freq, -1)
        self.in_mean.copy_(lp.mean(1))
        self.in_std.copy_(lp.std(1).clamp_min(1e-3))
        self.dec_out.bias.copy_(lp.mean(1))

    def forward(self, x: torch.Tensor, eps: torch.Tensor, cond=None, cond_mask=None, cond_rel=None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training terms of a batch ``x`` (B, F, T) complex with reparameterisation noise
        ``eps`` (B, L, T): ``(IS divergence, KL)`` each summed per frame and divided by
        ``F`` (per-bin units), averaged over the batch and frames."""
        power = x.real.float() ** 2 + x.imag.float() ** 2
        vis = self.visual(cond, cond_mask, cond_rel)
        mu, lv = self.encode(power, vis)
        z = mu + torch.exp(0.5 * lv) * eps
        rec = is_divergence(power, self.decode(z, vis)).sum(1)
        mu_p, lv_p = self.prior(power.shape[-1], vis, like=mu)
        kl = kl_gaussians(mu, lv, mu_p, lv_p).sum(1)
        return rec.mean() / self.n_freq, kl.mean() / self.n_freq

    @classmethod
    def from_config(cls, model: str, model_conf: dict | None) -> "SpeechVAE":
        if model not in VAES:
            raise InputError(f"unknown VAE model {model!r}; choose from: {', '.join(VAES)}")
        try:
            return VAES.build(model, **dict(model_conf or {}))
        except TypeError as e:
            raise InputError(f"model {model}: bad model_conf {model_conf}: {e}") from e


@VAES.register("vae")
def frame_vae(n_freq: int, latent: int = 32, hidden: int = 128, **kw) -> SpeechVAE:
    """Frame-wise VAE / AV-CVAE (``layers`` 0)."""
    kw.pop("layers", None)
    return SpeechVAE(n_freq, latent, hidden, layers=0, name="vae", **kw)


@VAES.register("rvae")
def tcn_rvae(n_freq: int, latent: int = 16, hidden: int = 128, layers: int = 4, **kw) -> SpeechVAE:
    """Non-causal RVAE with TCN encoder and decoder (``layers`` >= 1 dilated blocks)."""
    if int(layers) < 1:
        raise InputError("rvae: needs layers >= 1 (layers 0 is the frame-wise vae)")
    return SpeechVAE(n_freq, latent, hidden, layers=layers, name="rvae", **kw)


def latent_log_prior(z: torch.Tensor, mu: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
    """``log N(z; mu, e^lv)`` summed over the latent axis: (B, L, T) -> (B, T)."""
    return -0.5 * (((z - mu) ** 2) * torch.exp(-lv) + lv + math.log(2 * math.pi)).sum(1)
