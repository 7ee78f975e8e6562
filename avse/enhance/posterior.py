"""General posterior sampling ``y = A(s_1, ..., s_K) + n`` with the clean-speech prior.

:class:`PosteriorEnhancer` combines

* an operator: a :class:`avse.enhance.measurement.Measurement` built by the subclass from
  the per-utterance inputs (identity, known RIR, blind room, sum of ``K`` sources);
* a noise model ``noise`` / ``noise_conf``, the registry choice of every enhancer
  (:mod:`avse.enhance.noise_choice`: ``zero`` by default, ``fixed``, ``stationary``, or
  ``nmf``, whose IS-NMF variance is fitted from the Tweedie estimate every
  ``mstep_period`` steps, as UDiffSE+);
* one or more guidance strategies ``guidance`` (:mod:`avse.enhance.guidance`):
  ``"udiffse"`` (closed form; linear diagonal operator only), ``"dps"`` (autograd through
  the network; ``weighting`` ``"gaussian"`` or ``"norm"``), ``"projection"`` (mixture
  consistency);
* optional extra hooks (the room fit of BUDDy);
* a start (``init``, ``t_start``): pure noise at ``T`` by default, or, for sources bound to
  their talkers' lips, each talker's lip-envelope Wiener share of the mixture noised to
  ``t_start`` (``init: lips``).

The ``K`` sources of a posterior sample run as adjacent items of one batch
``(n_samples * K, F, T)`` through the shared prior. The output is the mean over the
``n_samples`` samples, ``(F, T)``, or ``(K, F, T)`` with the sources of every sample first
aligned to those of the first sample (best permutation by correlation), unless the score
function conditions each source on its own talker's lips (:mod:`avse.nets.lip_cond`):
source ``k`` is then talker ``k`` in every sample, and the order is kept.

The registered methods are in :mod:`avse.enhance.restoration`; UDiffSE / UDiffSE+ of
:mod:`avse.enhance.udiffse` are the special case ``A = I``, NMF noise, closed-form
guidance (they keep their own, bit-identical code path; see
``test/enhance/test_udiffse_regression.py``).
"""
from __future__ import annotations

import itertools
from abc import abstractmethod

import torch

from avse.enhance.guidance import DPSGuidance, ProjectionGuidance, TweedieMStep
from avse.enhance.likelihood import LikelihoodHook
from avse.enhance.measurement import SPLITS, Measurement
from avse.enhance.base import DiffusionEnhancer
from avse.errors import InputError

GUIDANCE = ("udiffse", "dps", "projection")


def align_sources(S: torch.Tensor) -> torch.Tensor:
    """Permute the sources of each sample to match sample 0: ``S`` (b, K, F, T) ->
    same shape, maximising the summed magnitude of normalised inner products."""
    b, K = S.shape[:2]
    if K == 1 or b == 1:
        return S
    flat = S.reshape(b, K, -1)
    unit = flat / flat.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    out = [S[0]]
    perms = list(itertools.permutations(range(K)))
    for j in range(1, b):
        corr = (unit[0].conj() @ unit[j].transpose(0, 1)).abs()      # (K ref, K est)
        best = max(perms, key=lambda p: float(sum(corr[k, p[k]] for k in range(K))))
        out.append(S[j][list(best)])
    return torch.stack(out)


def lip_wiener_start(Xn: torch.Tensor, score_fn, frontend, n_sources: int, who: str) -> torch.Tensor:
    """The ``lips`` start of a separation: each source's Wiener share of the mixture under
    its talker's lip-predicted speech envelope, ``(K, F, T)`` compressed.

    ``Xn`` (F, T) compressed mixture; ``score_fn.envelope(F, T)`` (a lip-variance prior,
    :meth:`avse.nets.lip_cond.ConditionedScore.envelope`) gives the standard deviation
    ``e_k`` (K, F, T) of each talker's compressed spectrogram; with the compression
    exponent ``alpha`` the linear power is about ``e_k^(2 / alpha)``, and source ``k`` starts
    from ``c(P_k / sum_j P_j * d(Xn))`` (``c``/``d``: (de)compression), the posterior mean of
    independent zero-mean Gaussian sources of those powers given their sum: the audio-visual
    Wiener filter of the conditional-VAE line (Sadeghi et al., TASLP 2020) with the
    diffusion prior's own lip envelope. Frames past the envelope's end get equal shares."""
    env = getattr(score_fn, "envelope", None)
    E = env(*Xn.shape) if callable(env) else None
    if E is None:
        raise InputError(f"{who}: init 'lips' needs a prior with a lip-predicted speech envelope "
                         "(an audio-visual prior with model_conf.lip_variance) and each source's lips")
    if E.shape[0] != n_sources:
        raise InputError(f"{who}: init 'lips' has the lips of {E.shape[0]} talkers for {n_sources} sources")
    if frontend is None:
        raise InputError(f"{who}: init 'lips' needs the model's spectral front-end (frontend=...)")
    P = E.double().pow(2.0 / frontend.alpha)
    share = (P / P.sum(0, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)).to(Xn.real.dtype)
    return frontend.compress(share * frontend.decompress(Xn)[None]).to(Xn.dtype)


class PosteriorEnhancer(DiffusionEnhancer):
    """See module docstring. Settings beyond :class:`DiffusionEnhancer`'s:

    ``guidance``: a name or list of names from ``GUIDANCE``; ``noise`` / ``noise_conf``:
    the noise model as for every enhancer (default ``zero``; an updating one, ``nmf``,
    gets its M-steps from the Tweedie estimate); ``mstep_period``: NMF M-step period (steps);
    DPS: ``zeta`` (``norm`` step), ``weighting``, ``dps_lam``, ``kappa``, ``dps_period``;
    ``proj_weight``, ``proj_period``, ``proj_start``, ``proj_split`` (``equal`` or
    ``power``: how the residual is shared among sources): projection; ``guidance_start``:
    fraction of the steps before any guidance starts (0; ``proj_start`` likewise for the
    projection alone). ``lam``/``lik_period``: the closed-form step. ``init``: as for every
    enhancer, plus ``lips`` (several sources, a prior with a lip-predicted envelope and each
    source's lips): each source starts from its talker's lip-envelope Wiener share of the
    observation (:func:`lip_wiener_start`), best with ``t_start`` below ``T`` (SDEdit), where
    the start is noised to ``t_start`` instead of being drowned in ``sigma(T) z``.
    """

    needs = ("frontend",)
    _inits = DiffusionEnhancer._inits + ("lips",)

    def __init__(self, guidance="dps", noise: str = "zero", mstep_period: int = 1, zeta: float = 0.01, weighting: str = "norm",
                 dps_lam: float = 1.5, kappa: float = 1.0, dps_period: int = 1,
                 proj_weight: float = 1.0, proj_period: int = 1, proj_start: float = 0.0,
                 proj_split: str = "equal", guidance_start: float = 0.0, **kw):
        super().__init__(noise=noise, **kw)
        names = [guidance] if isinstance(guidance, str) else list(guidance or [])
        bad = [g for g in names if g not in GUIDANCE]
        if not names or bad:
            raise InputError(f"{type(self).__name__}: guidance must be one or more of {GUIDANCE}, "
                             f"got {guidance!r}")
        self.guidance, self.mstep_period = names, int(mstep_period)
        self.zeta, self.weighting, self.dps_lam = float(zeta), weighting, float(dps_lam)
        self.kappa, self.dps_period = float(kappa), int(dps_period)
        self.proj_weight, self.proj_period = float(proj_weight), int(proj_period)
        self.guidance_start, self.proj_start, self.proj_split = float(guidance_start), float(proj_start), proj_split
        if proj_split not in SPLITS:
            raise InputError(f"{type(self).__name__}: proj_split must be one of {SPLITS}, got {proj_split!r}")
        self.needs_grad = "dps" in names

    # -------------------------------------------------------------- subclass API
    @abstractmethod
    def _measurement(self, Xn: torch.Tensor, **aux) -> Measurement:
        """The operator for this utterance (normalised observation ``Xn`` (F, T))."""

    def _extra_hooks(self, obs, Xn, generator) -> list:
        """Hooks run before the guidance (e.g. the room fit)."""
        return []

    def _extra_stats(self) -> dict:
        return {}

    # ------------------------------------------------------------------ pieces
    def _hooks(self, obs, meas, Xn, sde) -> list:
        hooks = []
        for name in self.guidance:
            if name == "udiffse":
                if meas.gain is None:
                    raise InputError(f"{type(self).__name__}: guidance 'udiffse' needs a linear "
                                     f"diagonal operator; the {meas.domain!r} operator is not")
                hooks.append(LikelihoodHook(obs, Xn, lam=self.lam, period=self.lik_period,
                                            m_step_from_tweedie=self.noise_model.updates))
                continue
            if name == "dps":
                if self.noise_model.updates and "udiffse" not in self.guidance:
                    hooks.append(TweedieMStep(obs, Xn, self.mstep_period, self.guidance_start))
                hooks.append(DPSGuidance(obs, Xn, zeta=self.zeta, weighting=self.weighting,
                                         lam=self.dps_lam, kappa=self.kappa,
                                         period=self.dps_period, start=self.guidance_start))
            else:
                hooks.append(ProjectionGuidance(meas, Xn, sde, weight=self.proj_weight,
                                                period=self.proj_period,
                                                start=max(self.guidance_start, self.proj_start),
                                                split=self.proj_split))
        return hooks

    def _start_k(self, Xn, sde, generator, score_fn=None, frontend=None) -> torch.Tensor:
        """``S_{t_start}`` (b * K, F, T): the ``init`` mean (``noisy``: the observation,
        shared by the sources; ``lips``: :func:`lip_wiener_start`) plus ``sigma z``."""
        if self.init == "lips":
            est = lip_wiener_start(Xn, score_fn, frontend, self.n_sources, type(self).__name__)
            return self._noised(est, sde, generator, self.n_samples)
        return self._noised(Xn[None], sde, generator, self.n_samples * self.n_sources)

    def _run(self, score_fn, sde, Xn, generator, **aux):
        meas = self._measurement(Xn, **aux)
        obs = self._noise(Xn, generator, aux.get("frontend"), measurement=meas, psd=aux.get("noise_psd"))
        hooks = self._extra_hooks(obs, Xn, generator) + self._hooks(obs, meas, Xn, sde)
        sampler = self._sampler(sde, grad=self.needs_grad)
        start = self._start_k(Xn, sde, generator, score_fn, aux.get("frontend"))
        S = sampler.sample(score_fn, start, generator=generator, hooks=hooks)
        n_lik = sum(getattr(h, "n_lik", 0) + getattr(h, "n_steps_done", 0) for h in hooks)
        n_m = sum(getattr(h, "n_mstep", 0) for h in hooks)
        stats = {"em_iterations": 1, "m_steps": n_m, "lik_steps": n_lik,
                 "is_divergence": getattr(obs, "last_divergence", None),
                 "guidance": list(self.guidance), "n_sources": self.n_sources}
        stats.update(self._extra_stats())
        return S, stats

    def _output(self, S: torch.Tensor) -> torch.Tensor:
        """(b * K, F, T) -> (F, T) for K = 1, else (K, F, T) (mean, aligned unless the sources
        are bound to talkers)."""
        if self.n_sources == 1:
            return S.mean(0)
        Z = S.reshape(-1, self.n_sources, *S.shape[1:])
        return (Z if self.sources_bound else align_sources(Z)).mean(0)
