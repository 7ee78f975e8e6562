"""Unsupervised speech enhancement with a clean-speech diffusion prior and NMF noise.

* ``udiffse``: UDiffSE (Nortier, Sadeghi, Serizel, "Unsupervised speech enhancement
  with diffusion-based generative models", ICASSP 2024). Expectation-maximisation:
  the E-step is one reverse predictor-corrector pass (:mod:`avse.diffusion.sampler`,
  Song et al. 2021) with the likelihood step of :mod:`avse.enhance.likelihood` every
  ``lik_period`` steps (skipped in the first iteration with ``skip_first``); the M-step
  updates the IS-NMF noise variance ``V = W H`` (W then H) on
  ``V_m = mean_b |X - S|^2`` of the finished samples. ``n_em`` passes; the output is
  the mean of the ``b`` parallel samples of the last pass.
* ``udiffse_plus``: UDiffSE+ (Ayilo, Sadeghi, Serizel, Alameda-Pineda, ICASSP 2025).
  One reverse pass; every ``lik_period`` steps W, H are updated from the Tweedie
  estimate ``S0_hat = (S_t + sigma_t^2 score) / mu_t`` (reusing the predictor's score,
  no extra network call), then the likelihood step is taken. ``nmf_start`` (our
  option; 0 = the paper) delays these M-steps to the last ``1 - nmf_start`` of the
  pass: early Tweedie estimates are shrunk towards zero, so their residual is mostly
  speech, which the NMF then keeps (on mini_av 0 dB mixtures with the CPU prior the
  NMF variance came out ~4 dB too high in speech-dominated bins and ~3 dB too low
  elsewhere); until then ``V`` keeps its initial level, ``mean |X|^2``.

The shared settings, noise models and call interface are those of
:class:`avse.enhance.base.DiffusionEnhancer`.
"""
from __future__ import annotations

from avse.enhance.base import ENHANCERS, DiffusionEnhancer, constructor_defaults
from avse.enhance.likelihood import LikelihoodHook
from avse.errors import InputError


@ENHANCERS.register("udiffse")
class UDiffSE(DiffusionEnhancer):
    """UDiffSE EM enhancement (Nortier et al., ICASSP 2024); see module docstring.

    Extra settings: ``n_em`` EM iterations (5); ``skip_first``: no likelihood step in
    the first E-step (True).
    """

    def __init__(self, n_em: int = 5, skip_first: bool = True, **kw):
        super().__init__(**kw)
        if int(n_em) < 1:
            raise InputError(f"UDiffSE: need n_em >= 1, got {n_em}")
        self.n_em, self.skip_first = int(n_em), bool(skip_first)

    def _run(self, score_fn, sde, Xn, generator, **aux):
        noise = self._noise(Xn, generator, aux.get("frontend"), psd=aux.get("noise_psd"))
        sampler = self._sampler(sde)
        lik_steps = 0
        for it in range(self.n_em):
            hook = LikelihoodHook(noise, Xn, lam=self.lam, period=self.lik_period,
                                  enabled=not (self.skip_first and it == 0),
                                  integrator=self.lik_integrator)
            S = sampler.sample(score_fn, self._start(Xn, sde, generator), generator=generator,
                               hooks=[hook])
            noise.m_step(Xn, S)
            lik_steps += hook.n_lik
        return S, {"em_iterations": self.n_em, "m_steps": self.n_em, "lik_steps": lik_steps,
                   "is_divergence": getattr(noise, "last_divergence", None)}


UDiffSE.DEFAULTS = constructor_defaults(UDiffSE)


@ENHANCERS.register("udiffse_plus")
class UDiffSEPlus(DiffusionEnhancer):
    """UDiffSE+ single-pass enhancement (Ayilo et al., ICASSP 2025); module docstring.
    ``nmf_start`` in [0, 1): fraction of the steps before the first M-step."""

    def __init__(self, nmf_start: float = 0.0, **kw):
        super().__init__(**kw)
        if not 0.0 <= float(nmf_start) < 1.0:
            raise InputError(f"UDiffSE+: need 0 <= nmf_start < 1, got {nmf_start}")
        self.nmf_start = float(nmf_start)

    def _run(self, score_fn, sde, Xn, generator, **aux):
        noise = self._noise(Xn, generator, aux.get("frontend"), psd=aux.get("noise_psd"))
        hook = LikelihoodHook(noise, Xn, lam=self.lam, period=self.lik_period,
                              m_step_from_tweedie=True, integrator=self.lik_integrator,
                              mstep_from=int(round(self.nmf_start * self.n_steps)))
        S = self._sampler(sde).sample(score_fn, self._start(Xn, sde, generator),
                                      generator=generator, hooks=[hook])
        return S, {"em_iterations": 1, "m_steps": hook.n_mstep, "lik_steps": hook.n_lik,
                   "is_divergence": getattr(noise, "last_divergence", None)}


UDiffSEPlus.DEFAULTS = constructor_defaults(UDiffSEPlus)
