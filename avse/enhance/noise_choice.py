"""The noise model of an enhancer as a registry choice: ``noise: <name>`` + ``noise_conf: {...}``.

Every diffusion enhancer (:class:`avse.enhance.base.DiffusionEnhancer`) takes its noise
model from :data:`NOISES`; a new noise model (e.g. one conditioned on a noise embedding)
is one registered class. A choice is a small configuration object; per utterance,
:meth:`NoiseChoice.observation` builds the :class:`~avse.enhance.likelihood.GaussianObservation`
the likelihood steps use.

* ``nmf`` (UDiffSE, Nortier et al., ICASSP 2024; the papers' default): noise variance
  ``V = W H``, IS-NMF of ``rank``, updated in the M-steps (``iters`` rounds,
  multiplicative-update exponent ``gamma``), started at random (``init: random``) or
  from the quantile PSD below (``init: quantile``, ``init_iters`` IS-NMF rounds).
  ``clip``: robust M-steps, the residual power clipped at ``clip`` times the model
  variance before each update (:class:`~avse.enhance.nmf.NMF`; default None: plain).
* ``stationary``: a per-frequency PSD from a low quantile of the smoothed noisy power
  (:func:`~avse.enhance.noise_models.quantile_psd`: ``quantile``, ``smooth``, ``bias``),
  fixed (the M-steps do nothing).
* ``fixed``: a known variance ``var`` (normalised compressed units).
* ``zero``: a noise-free observation ``X = A(S)`` (restoration of clean reverberant or
  mixed speech).
* ``oracle``: the true noise of a simulated mixture (``noise1.scp``), per bin or its
  long-term PSD: a bound, not a model (:class:`Oracle`).
* ``embed_nmf`` (:mod:`avse.enhance.embed_noise`): IS-NMF whose bases are predicted
  from a per-utterance noise embedding (text, picture or noise clip of the scene).
* ``tracker`` (:mod:`avse.enhance.tracker_noise`): a per-bin noise variance predicted
  from the input by a network trained on simulated mixtures, optionally conditioned
  on that noise embedding.

``domain`` (``nmf``, ``stationary``): ``compressed`` (the papers: Gaussian in the
compressed STFT domain) or ``linear`` (Gaussian in the linear STFT domain, mapped to the
compressed domain through the running speech estimate,
:class:`~avse.enhance.noise_models.CompressedDomainNoise`; needs the front-end).

A PSD estimated elsewhere: the models whose estimate is a quantile PSD of the input
(``stationary``; ``nmf`` with ``init: quantile``; :attr:`NoiseChoice.file_psd`) take
``observation(..., psd=P)`` instead of estimating it from ``Xn``. Chunked enhancement of a
long recording (:mod:`avse.enhance.chunked`) gives every chunk the estimate of the whole
file this way (:mod:`avse.enhance.file_noise`). ``P`` (F, 1) is in the units of
:meth:`_PSDModel.power` of ``Xn``; that of ``X / c`` is that of ``X`` divided by
``c ** power_exponent(frontend)``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from avse.enhance.likelihood import FixedVarianceNoise, GaussianNMFNoise, GaussianObservation, ZeroNoise
from avse.enhance.nmf import NMF
from avse.enhance.noise_models import NOISE_DOMAINS, NOISE_INITS, CompressedDomainNoise, decompress, quantile_psd
from avse.errors import InputError
from avse.utils.registry import Registry

NOISES = Registry("noise model")


class NoiseChoice(ABC):
    """Base of the registered noise models.

    ``updates``: the M-steps change the model (an NMF), so an enhancer runs them;
    ``needs_frontend``: :meth:`observation` needs ``frontend`` (its compression exponent);
    ``file_psd``: :meth:`observation` takes ``psd=`` (module docstring);
    ``needs``: per-utterance data-dir tables the model takes (``"<name>.scp"``, passed
    to :meth:`observation` as keyword ``<name>=...``; e.g. a noise embedding).
    """

    updates = False
    needs_frontend = False
    file_psd = False
    needs: tuple = ()

    @abstractmethod
    def observation(self, Xn: torch.Tensor, generator=None, frontend=None, measurement=None,
                    psd: torch.Tensor | None = None) -> GaussianObservation:
        """The noise model of one utterance: ``Xn`` (F, T) complex, the normalised noisy
        compressed STFT; ``measurement``: the operator ``A`` (None: identity); ``psd``
        (F, 1): a PSD estimated elsewhere, only where :attr:`file_psd`."""

    def _alpha(self, frontend) -> float:
        if frontend is None:
            raise InputError(f"noise model {type(self).__name__}: domain 'linear' needs the front-end "
                             "(keyword frontend=...) for its compression exponent")
        return float(frontend.alpha)


def clip_option(clip, who: str) -> float | None:
    """The ``clip`` option of the NMF noise models (:class:`~avse.enhance.nmf.NMF`): None or > 1."""
    if clip is not None and not float(clip) > 1.0:
        raise InputError(f"{who}: clip must be > 1 (a multiple of the noise variance), got {clip}")
    return None if clip is None else float(clip)


class _PSDModel(NoiseChoice):
    """Shared options of the models that can estimate a quantile PSD."""

    def __init__(self, domain: str, quantile: float, smooth: int, bias: float):
        if domain not in NOISE_DOMAINS:
            raise InputError(f"noise model: domain must be one of {NOISE_DOMAINS}, got {domain!r}")
        if not (0.0 <= float(quantile) <= 1.0 and int(smooth) >= 1 and float(bias) > 0):
            raise InputError(f"noise model: need 0 <= quantile <= 1, smooth >= 1, bias > 0; got "
                             f"{quantile}, {smooth}, {bias}")
        self.domain = domain
        self.psd_conf = dict(q=float(quantile), smooth=int(smooth), bias=float(bias))
        self.needs_frontend = domain == "linear"

    def power(self, Xn, frontend) -> torch.Tensor:
        """``|Z|^2`` (F, T): the power of the observation in the model's domain."""
        Z = decompress(Xn, self._alpha(frontend)) if self.domain == "linear" else Xn
        return Z.abs().pow(2)

    def power_exponent(self, frontend) -> float:
        """:meth:`power` of ``X / c`` is that of ``X`` divided by ``c`` to this power."""
        return 2.0 / self._alpha(frontend) if self.domain == "linear" else 2.0

    def _psd(self, power: torch.Tensor, psd: torch.Tensor | None) -> torch.Tensor:
        """The given ``psd`` (F, 1), or the quantile PSD of ``power`` (F, T)."""
        if psd is None:
            return quantile_psd(power, **self.psd_conf)
        if psd.shape != (power.shape[0], 1):
            raise InputError(f"noise model: a given PSD must be ({power.shape[0]}, 1), got {tuple(psd.shape)}")
        return psd.to(device=power.device, dtype=power.dtype)


@NOISES.register("stationary")
class Stationary(_PSDModel):
    """A fixed per-frequency PSD from the noisy input (module docstring)."""

    file_psd = True

    def __init__(self, domain: str = "compressed", quantile: float = 0.1, smooth: int = 5, bias: float = 4.0):
        super().__init__(domain, quantile, smooth, bias)

    def observation(self, Xn, generator=None, frontend=None, measurement=None, psd=None):
        psd = self._psd(self.power(Xn, frontend), psd)
        if self.domain == "linear":
            return CompressedDomainNoise(self._alpha(frontend), psd=psd, measurement=measurement)
        return FixedVarianceNoise(psd, measurement=measurement)


@NOISES.register("nmf")
class NMFNoise(_PSDModel):
    """IS-NMF noise variance updated in the M-steps (module docstring)."""

    updates = True

    def __init__(self, rank: int = 4, iters: int = 1, gamma: float = 1.0, domain: str = "compressed",
                 init: str = "random", init_iters: int = 50, quantile: float = 0.1, smooth: int = 5,
                 bias: float = 4.0, clip: float | None = None):
        super().__init__(domain, quantile, smooth, bias)
        self.clip = clip_option(clip, "noise model nmf")
        if init not in NOISE_INITS:
            raise InputError(f"noise model nmf: init must be one of {NOISE_INITS}, got {init!r}")
        if not (int(rank) >= 1 and int(iters) >= 1 and 0 < float(gamma) <= 1 and int(init_iters) >= 0):
            raise InputError(f"noise model nmf: need rank >= 1, iters >= 1, 0 < gamma <= 1, init_iters >= 0; "
                             f"got {rank}, {iters}, {gamma}, {init_iters}")
        self.rank, self.iters, self.gamma = int(rank), int(iters), float(gamma)
        self.init, self.init_iters = init, int(init_iters)
        self.file_psd = init == "quantile"

    def observation(self, Xn, generator=None, frontend=None, measurement=None, psd=None):
        power = self.power(Xn, frontend)
        nmf = NMF.random(*Xn.shape[-2:], self.rank, generator=generator, gamma=self.gamma, clip=self.clip,
                         target_power=float(power.mean()), device=Xn.device, dtype=Xn.real.dtype)
        if self.init == "quantile":
            nmf.update(self._psd(power, psd).expand(power.shape).contiguous(), self.init_iters)
        if self.domain == "linear":
            return CompressedDomainNoise(self._alpha(frontend), nmf=nmf, n_iter=self.iters,
                                         measurement=measurement)
        return GaussianNMFNoise(nmf, n_iter=self.iters, measurement=measurement)


@NOISES.register("fixed")
class Fixed(NoiseChoice):
    """A known noise variance ``var`` > 0 (normalised compressed units)."""

    def __init__(self, var: float = 1e-3):
        if not float(var) > 0:
            raise InputError(f"noise model fixed: var must be > 0, got {var}")
        self.var = float(var)

    def observation(self, Xn, generator=None, frontend=None, measurement=None, psd=None):
        return FixedVarianceNoise(self.var, measurement=measurement)


@NOISES.register("zero")
class Zero(NoiseChoice):
    """No noise: ``X = A(S)``."""

    def observation(self, Xn, generator=None, frontend=None, measurement=None, psd=None):
        return ZeroNoise(measurement)


def true_noise_stft(frontend, wav, noise1, Y: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The true noise of a simulated mixture in the units of a (normalised) STFT of it.

    ``wav``: the mixture (N,) as read from ``wav.scp``; ``noise1``: its noise (N' >= N,)
    from ``noise1.scp``; ``Y`` (F, T_pad) complex: a linear STFT of ``wav / c`` for an
    unknown ``c`` (an enhancer's normalised input, frames possibly zero-padded at the
    end). Returns ``(N, T)``: the noise's STFT scaled by ``1 / c`` (F, T_pad), zero on the
    padding frames, which start at ``T``. ``c`` is the ratio of the powers of ``Y`` and of
    the STFT of ``wav``, so ``Y`` must be that mixture's."""
    y = torch.as_tensor(np.asarray(wav, dtype=np.float32)).to(Y.device)
    n = torch.as_tensor(np.asarray(noise1, dtype=np.float32)).to(Y.device)
    if y.dim() != 1 or n.dim() != 1 or n.shape[-1] < y.shape[-1]:
        raise InputError(f"oracle noise: need 1-D wav and noise1 with the noise at least as long as the "
                         f"mixture, got {tuple(y.shape)} and {tuple(n.shape)}")
    Yr, Nr = frontend.stft(y), frontend.stft(n[:y.shape[-1]])
    T = min(Yr.shape[-1], Y.shape[-1])
    if T < 1 or Yr.shape[-1] > Y.shape[-1]:
        raise InputError(f"oracle noise: the input has {Y.shape[-1]} frames, its wav.scp entry "
                         f"{Yr.shape[-1]}: is wav.scp the signal being enhanced?")
    ratio = Y[:, :T].abs().pow(2).sum() / Yr[:, :T].abs().pow(2).sum().clamp_min(1e-30)
    N = torch.zeros_like(Y)
    N[:, :T] = (Nr[:, :T] * ratio.sqrt()).to(Y.dtype)
    return N, T


ORACLE_STATS = ("bin", "psd")


def true_noise_power(N: torch.Tensor, T: int, stat: str = "bin", smooth: int = 1) -> torch.Tensor:
    """``|N|^2`` (F, T_pad) of :func:`true_noise_stft`'s ``(N, T)``: per bin (``stat: bin``,
    a moving average over ``smooth`` frames, odd) or its long-term mean (``psd``); the
    padding frames from ``T`` on stay zero and out of the averages."""
    P = N[:, :T].abs().pow(2)
    if stat == "psd":
        P = P.mean(-1, keepdim=True).expand_as(P)
    elif smooth > 1:
        P = torch.nn.functional.avg_pool1d(P[None], smooth, 1, smooth // 2, count_include_pad=False)[0]
    return torch.cat([P, P.new_zeros(P.shape[0], N.shape[-1] - T)], dim=-1)


@NOISES.register("oracle")
class Oracle(NoiseChoice):
    """The true noise power of a simulated mixture per time-frequency bin (``noise1.scp``,
    with ``wav.scp`` for the input's normalisation; :func:`true_noise_stft`), fixed,
    in the linear domain: the bound of every blind noise model of the same enhancer.
    ``stat``: ``bin`` (the power per bin) or ``psd`` (its long-term mean: the bound of a
    stationary model); ``smooth`` (odd number of frames, ``bin`` only): the power per bin
    averaged over that many frames, a local noise PSD rather than the realised power: the
    bound of a model of the noise variance (``tracker``), which cannot know the realisation.
    The enhancer must see the mixture itself (not a cascade's later step).
    :mod:`avse.enhance.oracle` removes the same noise without a prior."""

    needs = ("wav.scp", "noise1.scp")
    needs_frontend = True

    def __init__(self, stat: str = "bin", smooth: int = 1):
        if stat not in ORACLE_STATS:
            raise InputError(f"noise model oracle: stat must be 'bin' or 'psd', got {stat!r}")
        if int(smooth) != smooth or smooth < 1 or smooth % 2 == 0:
            raise InputError(f"noise model oracle: smooth must be an odd number of frames >= 1, got {smooth!r}")
        if stat == "psd" and smooth != 1:
            raise InputError("noise model oracle: smooth is for stat: bin (psd is already the long-term mean)")
        self.stat, self.smooth = stat, int(smooth)

    def observation(self, Xn, generator=None, frontend=None, measurement=None, psd=None, wav=None, noise1=None):
        if frontend is None or wav is None or noise1 is None:
            raise InputError("noise model oracle: needs frontend=, wav= (the mixture) and noise1= (its noise)")
        N, T = true_noise_stft(frontend, wav, noise1, decompress(Xn.to(torch.complex128), self._alpha(frontend)))
        P = true_noise_power(N, T, self.stat, self.smooth)
        return CompressedDomainNoise(self._alpha(frontend), psd=P.to(Xn.real.dtype), measurement=measurement)


def build_noise(name: str, conf: dict | None) -> NoiseChoice:

    """``NOISES.build(name, **conf)``, with a clear error for a conf that is not a mapping."""
    if conf is not None and not isinstance(conf, dict):
        raise InputError(f"noise_conf must be a mapping of options, got {conf!r}")
    return NOISES.build(name, **dict(conf or {}))


from avse.enhance import embed_noise, tracker_noise  # noqa: E402,F401  (register embed_nmf, tracker)
