"""Noise models conditioned on a noise embedding: ``noise: embed_nmf``.

Choice (a) of issue D3: NMF noise bases predicted from a contrastive noise embedding
(:mod:`avse.nets.noise_embed`, CLIP/CLAP-style: Radford et al. 2021, Elizalde et al.
2023) and refined by EM, in the IS-NMF noise model of UDiffSE (Nortier, Sadeghi,
Serizel, ICASSP 2024). Why bases rather than a conditioned prior on the PSD: the
blind models of this toolkit fail on non-stationary noise in two ways, a fixed
quantile PSD (``stationary``) cannot follow babble, music or passing cars, and a free
NMF (``nmf``) fitted to the residuals of shrunk speech estimates absorbs speech. Bases
that describe *only* the announced noise type keep the time-varying activations of
the NMF (so the variance follows the noise over time) while making speech hard to
explain; the activations are what the noisy input tells.

Per utterance the embedding comes from the data-dir table ``noise_embed_<embed>.scp``
(one ``.npy`` vector per utterance, written by :mod:`avse.bin.noise_condition` from a
text, a picture, a short noise-only clip or external features); ``decoder`` is the
noise-embedding model file whose :class:`~avse.nets.noise_embed.BasisDecoder` maps it to
``W`` (F, K), unit column sums, in linear STFT power units of the prior's front-end.

Options: ``embed`` (which table: ``text``, ``image``, ``clip``, ...), ``domain``
(``linear``: Gaussian in the linear STFT domain seen through the compression,
:class:`~avse.enhance.noise_models.CompressedDomainNoise`, default; ``compressed``),
``update_w`` (False: W stays the prediction and the M-steps estimate only H; True:
W is refined by the multiplicative updates too), ``iters`` (M-step rounds),
``init`` (``quantile``: H first fitted to the stationary quantile PSD of the input,
then the M-steps make it time-varying; ``noisy``: H fitted to the noisy power itself),
``init_iters``, ``gamma`` and the quantile-PSD options of ``stationary``;
``floor_basis`` (default False): one more basis, the shape of the input's stationary quantile PSD,
so that the stationary floor of the noise (a rumble under passing cars, a room murmur)
need not be built from the type's bases.
``clip`` (default None): robust activations, the power each update fits (the noisy power
of the initial fit, then the residuals) clipped at ``clip`` times the model variance
(:class:`~avse.enhance.nmf.NMF`), so that speech in the residual does not raise them.
"""
from __future__ import annotations

import numpy as np
import torch

from avse.enhance.likelihood import GaussianNMFNoise
from avse.enhance.nmf import FLOOR, NMF, is_divergence, update_H
from avse.enhance.noise_choice import NOISES, _PSDModel, clip_option
from avse.enhance.noise_models import CompressedDomainNoise
from avse.errors import InputError

EMBED_INITS = ("quantile", "noisy")
_EMBEDDERS: dict = {}


def load_embedder(path: str):
    """The noise-embedding model at ``path``, loaded once per process."""
    from avse.nets.noise_embedder import NoiseEmbedder

    if path not in _EMBEDDERS:
        _EMBEDDERS[path] = NoiseEmbedder.load(path)
    return _EMBEDDERS[path]


class EmbeddingBases:
    """The per-utterance noise embedding of a noise model and the bases it predicts.

    ``decoder``: the noise-embedding model file; ``embed``: which data-dir table
    (``noise_embed_<embed>.scp``, keyword ``noise_embed_<embed>`` of ``observation``);
    ``who``: the model's name in error messages. :attr:`needs` lists the table.
    """

    def __init__(self, decoder: str | None, embed: str, who: str):
        if not decoder:
            raise InputError(f"{who}: give noise_conf.decoder, the noise-embedding model file "
                             "(python -m avse.bin.train_noise_embed)")
        if not str(embed).replace("_", "").isalnum():
            raise InputError(f"{who}: embed must be a plain name (text, image, clip), got {embed!r}")
        self.decoder, self.embed, self.who = str(decoder), str(embed), who
        self.kw = f"noise_embed_{self.embed}"
        self.needs = (f"{self.kw}.scp",)

    def bases(self, cond: dict, n_freq: int, device, dtype) -> torch.Tensor:
        """``W`` (F, K) predicted from the embedding ``cond[self.kw]`` (D,)."""
        if cond.get(self.kw) is None:
            raise InputError(f"{self.who}: no embedding (keyword {self.kw}=..., the data dir's "
                             f"{self.kw}.scp: python -m avse.bin.noise_condition)")
        emb = load_embedder(self.decoder)
        e = torch.as_tensor(np.asarray(cond[self.kw], dtype=np.float32)).reshape(-1)
        if e.numel() != emb.model.dim:
            raise InputError(f"{self.who}: embedding of size {e.numel()}, the model "
                             f"{self.decoder} has {emb.model.dim}")
        W = emb.bases(e)[0]
        if W.shape[0] != n_freq:
            raise InputError(f"{self.who}: {self.decoder} predicts bases over {W.shape[0]} "
                             f"frequencies, the prior's front-end has {n_freq} (train it with --decoder_n_fft)")
        return W.to(device=device, dtype=dtype).clamp_min(FLOOR)


class FixedBasisNMF(NMF):
    """An IS-NMF whose bases ``W`` stay fixed: :meth:`update` changes only ``H``."""

    def update(self, V_m: torch.Tensor, n_iter: int = 1) -> torch.Tensor:
        V_m = V_m.to(self.W.dtype)
        for _ in range(int(n_iter)):
            self.H = update_H(self.target(V_m), self.W, self.H, self.gamma)
        return is_divergence(V_m, self.variance())


@NOISES.register("embed_nmf")
class EmbedNMFNoise(_PSDModel):
    """IS-NMF noise with bases predicted from a noise embedding (module docstring)."""

    updates = True

    def __init__(self, decoder: str | None = None, embed: str = "text", domain: str = "linear",
                 update_w: bool = False, iters: int = 1, gamma: float = 1.0, init: str = "quantile",
                 init_iters: int = 30, quantile: float = 0.1, smooth: int = 5, bias: float = 2.0,
                 floor_basis: bool = False, clip: float | None = None):
        super().__init__(domain, quantile, smooth, bias)
        self.clip = clip_option(clip, "noise model embed_nmf")
        if init not in EMBED_INITS:
            raise InputError(f"noise model embed_nmf: init must be one of {EMBED_INITS}, got {init!r}")
        if not (int(iters) >= 1 and 0 < float(gamma) <= 1 and int(init_iters) >= 1):
            raise InputError(f"noise model embed_nmf: need iters >= 1, 0 < gamma <= 1, init_iters >= 1; "
                             f"got {iters}, {gamma}, {init_iters}")
        self.embedding = EmbeddingBases(decoder, embed, "noise model embed_nmf")
        self.update_w, self.iters, self.gamma = bool(update_w), int(iters), float(gamma)
        self.init, self.init_iters = init, int(init_iters)
        self.floor_basis = bool(floor_basis)
        self.file_psd = init == "quantile" or self.floor_basis
        self.needs = self.embedding.needs

    def observation(self, Xn, generator=None, frontend=None, measurement=None, psd=None, **cond):
        power = self.power(Xn, frontend)
        W = self.embedding.bases(cond, power.shape[0], Xn.device, power.dtype)
        floor = self._psd(power, psd) if self.file_psd else None
        if self.floor_basis:
            W = torch.cat([W, floor / floor.sum()], dim=1)
        target = floor.expand(power.shape).contiguous() if self.init == "quantile" else power
        H = target.mean().expand(W.shape[1], power.shape[1]).clone() / W.shape[1]
        nmf = FixedBasisNMF(W, H, gamma=self.gamma, clip=self.clip)
        nmf.update(target, self.init_iters)
        if self.update_w:
            nmf = NMF(nmf.W, nmf.H, gamma=self.gamma, clip=self.clip)
        if self.domain == "linear":
            return CompressedDomainNoise(self._alpha(frontend), nmf=nmf, n_iter=self.iters, measurement=measurement)
        return GaussianNMFNoise(nmf, n_iter=self.iters, measurement=measurement)
