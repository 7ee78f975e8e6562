"""Observation models for diffusion posterior sampling, and the likelihood hook.

Observation ``X = A(S0) + N`` with ``N`` zero-mean complex Gaussian of variance ``V``
(per TF bin; :class:`FixedVarianceNoise`, :class:`GaussianNMFNoise`, or
:class:`ZeroNoise`) and an operator ``A`` given as a
:class:`avse.enhance.measurement.Measurement` (``measurement=``; ``None``: the identity
of UDiffSE). :meth:`GaussianObservation.forward` applies it (any domain, differentiable,
so DPS works through it); the closed-form step below also needs :meth:`adjoint` and
:attr:`gain`, i.e. a linear ``A`` with diagonal ``A A^H`` (the identity or a sum of
sources in the compressed domain). Other guidance strategies (DPS, projection) are in
:mod:`avse.enhance.guidance`.

Shapes: ``X`` (F, T) complex (one utterance), broadcast against the sample batch
``S`` (B, F, T) complex (B parallel posterior samples); ``V`` (F, T) real, in the same
(compressed, normalised) power units as ``|X|^2``.

Likelihood step (UDiffSE, Nortier, Sadeghi, Serizel, ICASSP 2024). With the crude
reverse approximation ``S0 | S_t ~ CN(S_t / mu_t, (sigma_t / mu_t)^2)`` the observation
given the current diffusion state is ``X | S_t ~ CN(A S_t / mu_t, (sigma_t/mu_t)^2 c + V)``
(``c`` the diagonal of ``A A^H``, :attr:`gain`), whose complex score (same convention as
the prior score, ``-(x - a) / v`` for ``CN(a, v)``) is::

    grad_{S_t} log p(X | S_t) = (1 / mu_t) A^H [(X - A S_t / mu_t) / ((sigma_t/mu_t)^2 c + V)]

The posterior reverse SDE adds ``g^2 * grad log p(X | S_t)`` to the prior drift term
``g^2 * score``, so the Euler step of the likelihood part is::

    S <- S + lambda * g(t)^2 * dt * grad_{S_t} log p(X | S_t)

i.e. the formula of REFERENCE section 3 for ``A = I``; it moves ``S / mu_t`` towards
``X`` with a Wiener-like weight. ``lambda`` (1.5) scales it; it is applied every
``period`` (2) steps (``integrator: exp`` integrates it exactly over the step instead
of Euler's linearisation; see :meth:`GaussianObservation.step_from_moments`). We evaluate ``mu_t``, ``sigma_t``, ``g(t)`` and ``dt`` of the step
just taken (time ``t`` at the predictor's input) on the sample after the predictor (a
Lie splitting of the posterior SDE). This keeps the coefficient bounded on the last
step (``sigma_t >= sigma(t_eps) > 0``) even where ``V`` is tiny.

Caveat (checked on Gaussian priors in the tests): the approximation ignores the prior
in ``p(S0 | S_t)``, so it is accurate only when the prior is broad compared with
``(sigma_t / mu_t)^2`` (up to about 5 at t = 1); for narrow priors the sampled
posterior mean is biased towards the prior mean even with many steps, and the
prior-only Langevin corrector adds to that bias. Exact or better moments can be
supplied to :class:`LikelihoodHook` (``moments=``) without touching the sampler.

M-step: :class:`GaussianNMFNoise` fits ``V = W H`` by IS-NMF (:mod:`avse.enhance.nmf`)
to ``V_m = mean_B |X - A S0|^2`` (UDiffSE: finished samples; UDiffSE+, Ayilo et al.,
ICASSP 2025: the Tweedie estimate during the pass).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from avse.diffusion.sampler import StepState
from avse.enhance.nmf import FLOOR, NMF, is_divergence
from avse.errors import InputError


#: likelihood-step integrators (:meth:`GaussianObservation.step_from_moments`)
INTEGRATORS = ("euler", "exp")


class GaussianObservation(ABC):
    """``X = A(S0) + N``, ``N ~ CN(0, V)``; base class of the observation models.

    ``measurement``: the operator ``A`` (:class:`avse.enhance.measurement.Measurement`),
    ``None`` for the identity."""

    measurement = None

    @property
    def gain(self):
        """Diagonal of ``A A^H`` (1 for the identity); an error if ``A`` is not diagonal."""
        if self.measurement is None:
            return 1.0
        g = self.measurement.gain
        if g is None:
            raise InputError("the closed-form (udiffse) likelihood step needs a linear operator "
                             f"with diagonal A A^H; {type(self.measurement.P).__name__} in the "
                             f"{self.measurement.domain!r} domain is not: use guidance 'dps'")
        return g

    def forward(self, S0: torch.Tensor) -> torch.Tensor:
        """``A S0``: (B*K, F, T) -> (B, F, T) (K sources; identity: unchanged)."""
        return S0 if self.measurement is None else self.measurement.forward(S0)

    def adjoint(self, R: torch.Tensor) -> torch.Tensor:
        """``A^H R``: (B, F, T) -> shape of ``S0``."""
        return R if self.measurement is None else self.measurement.adjoint(R)

    @abstractmethod
    def variance(self) -> torch.Tensor:
        """Noise variance ``V``: real, broadcastable to (F, T)."""

    def residual(self, X: torch.Tensor, S0: torch.Tensor) -> torch.Tensor:
        """``X - A S0`` (B, F, T)."""
        return X - self.forward(S0)

    def score_from_moments(self, X: torch.Tensor, mean0: torch.Tensor, jac, var0
                           ) -> torch.Tensor:
        """Likelihood score from a Gaussian approximation of ``p(S0 | S_t)``.

        ``mean0`` (B, F, T): its mean; ``var0``: its variance (float or real tensor);
        ``jac``: d mean0 / d S_t (real float or tensor). Then
        ``X | S_t ~ CN(A mean0, var0 c + V)`` and the score is
        ``jac * A^H [(X - A mean0) / (var0 c + V)]`` (B, F, T).
        """
        denom = var0 * self.gain + self.variance().to(X.device)
        return jac * self.adjoint(self.residual(X, mean0) / denom)

    def score(self, S: torch.Tensor, X: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
        """UDiffSE approximation of ``grad_{S_t} log p(X | S_t)`` (B, F, T): moments
        ``mean0 = S_t / mu_t``, ``jac = 1 / mu_t``, ``var0 = (sigma_t / mu_t)^2``."""
        return self.score_from_moments(X, S / mu, 1.0 / mu, (sigma / mu) ** 2)

    def step(self, S: torch.Tensor, X: torch.Tensor, mu: float, sigma: float, g: float,
             dt: float, lam: float = 1.5, integrator: str = "euler") -> torch.Tensor:
        """UDiffSE likelihood step ``S + lam g^2 dt grad log p(X | S_t)`` (``euler``), or
        its exponential-integrator form (``exp``, see :meth:`step_from_moments`)."""
        return self.step_from_moments(S, X, S / mu, 1.0 / mu, (sigma / mu) ** 2,
                                      lam * g * g * dt, integrator)

    def step_from_moments(self, S: torch.Tensor, X: torch.Tensor, mean0: torch.Tensor, jac, var0,
                          coef: float, integrator: str = "euler") -> torch.Tensor:
        """One likelihood step of size ``coef`` (``lam g^2 dt``) from the moments of
        :meth:`score_from_moments`.

        ``euler``: ``S + coef * score``. ``exp``: the exact solution over the step of the
        flow ``dS/d tau = score`` (``tau`` from 0 to ``coef``), which is linear in ``S``
        with per-bin rate ``r = coef jac^2 c / (var0 c + V)`` when ``mean0 = jac S + b``
        and ``A A^H = c I``: the Euler increment scaled by ``(1 - exp(-r)) / r``. The two
        agree for small ``r``; where the noise variance is tiny and the steps are few
        (``r`` > 1), Euler overshoots ``X`` (and diverges for ``r`` > 2) while the
        exponential form moves ``A S / mu`` at most all the way to ``X``.
        """
        denom = var0 * self.gain + self.variance().to(X.device)
        upd = coef * jac * self.adjoint(self.residual(X, mean0) / denom)
        if integrator == "exp":
            r = (coef * jac * jac * self.gain) / denom
            r = torch.as_tensor(r, device=upd.device, dtype=upd.real.dtype).clamp_min(1e-12)
            upd = upd * (-torch.expm1(-r) / r)
        elif integrator != "euler":
            raise InputError(f"likelihood integrator must be 'euler' or 'exp', got {integrator!r}")
        return S + upd

    def nll(self, S0: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """``-log p(X | S0)`` per sample (B,): ``sum |X - A S0|^2 / V + log(pi V)``.

        Differentiable in ``S0`` (for DPS-style gradients through the network).
        """
        V = self.variance().to(X.device)
        r2 = self.residual(X, S0).abs().pow(2)
        return (r2 / V + torch.log(math.pi * V)).flatten(1).sum(1)

    def m_step(self, X: torch.Tensor, S0: torch.Tensor) -> torch.Tensor | None:
        """Update the noise parameters from estimates ``S0`` (B, F, T); default: none."""
        return None

    #: whether :meth:`variance` depends on the speech estimate, refreshed by :meth:`track`
    #: (and by :meth:`m_step`) before every likelihood step of :class:`LikelihoodHook`
    tracks_speech = False

    def track(self, S0: torch.Tensor) -> None:
        """Take ``S0`` (B, F, T) (e.g. the Tweedie estimate) as the current speech
        estimate; default: nothing (the variance does not depend on it)."""


class FixedVarianceNoise(GaussianObservation):
    """Known noise variance (NMF disabled): ``var`` a float or real tensor (F, T)."""

    def __init__(self, var: float | torch.Tensor, measurement=None):
        v = torch.as_tensor(var, dtype=torch.float32)
        if torch.any(v <= 0):
            raise ValueError("noise variance must be positive")
        self.var, self.measurement = v, measurement

    def variance(self) -> torch.Tensor:
        return self.var


class ZeroNoise(GaussianObservation):
    """Noise-free observation ``X = A(S0)`` (``V = 0``). The closed-form step stays
    finite (``var0 > 0``); :meth:`nll` is the plain squared misfit."""

    def __init__(self, measurement=None):
        self.measurement = measurement

    def variance(self) -> torch.Tensor:
        return torch.zeros(())

    def nll(self, S0: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """``sum |X - A S0|^2`` per sample (B,)."""
        return self.residual(X, S0).abs().pow(2).flatten(1).sum(1)


class GaussianNMFNoise(GaussianObservation):
    """Noise variance ``V = W H`` by IS-NMF (UDiffSE). ``nmf``: an :class:`NMF` state
    (W (F, K), H (K, T)); ``n_iter``: multiplicative update rounds per M-step."""

    def __init__(self, nmf: NMF, n_iter: int = 1, measurement=None):
        self.nmf = nmf
        self.n_iter = int(n_iter)
        self.measurement = measurement
        self.last_divergence: float | None = None

    def variance(self) -> torch.Tensor:
        return self.nmf.variance()

    def residual_power(self, X: torch.Tensor, S0: torch.Tensor) -> torch.Tensor:
        """``V_m = mean over the batch of |X - A S0|^2`` (F, T), floored at 1e-10."""
        return self.residual(X, S0).abs().pow(2).mean(0).clamp_min(FLOOR)

    def m_step(self, X: torch.Tensor, S0: torch.Tensor) -> torch.Tensor:
        """One M-step (update W then H, ``n_iter`` rounds); returns ``D_IS(V_m | W H)``."""
        div = self.nmf.update(self.residual_power(X, S0), self.n_iter)
        self.last_divergence = float(div)
        return div

    def divergence(self, X: torch.Tensor, S0: torch.Tensor) -> float:
        """``D_IS(V_m | W H)`` for estimates ``S0`` without updating."""
        return float(is_divergence(self.residual_power(X, S0), self.variance()))


class LikelihoodHook:
    """Sampler hook adding the likelihood step every ``period`` steps.

    Active on steps ``i`` with ``(i + 1) % period == 0`` (so with N = 30, period 2:
    steps 1, 3, ..., 29, the last included); nothing happens if ``enabled`` is false.
    With ``m_step_from_tweedie`` (UDiffSE+), each active step from step ``mstep_from``
    on (0-based; default 0: all) first runs the M-step of ``obs`` on the Tweedie
    estimate ``state.x0_hat`` (no extra network call), then the likelihood step with the
    updated variance; on the other active steps, an observation model whose variance
    depends on the speech (``obs.tracks_speech``) first tracks the Tweedie estimate.
    Counters: ``n_lik``, ``n_mstep``.

    ``moments``: optional ``f(state) -> (mean0, jac, var0)``, a Gaussian approximation
    of ``p(S0 | S_t = state.x)`` used instead of UDiffSE's (see
    :meth:`GaussianObservation.score_from_moments`; e.g. exact moments for a Gaussian
    prior in tests, or Tweedie-based ones).
    """

    def __init__(self, obs: GaussianObservation, X: torch.Tensor, lam: float = 1.5,
                 period: int = 2, enabled: bool = True, m_step_from_tweedie: bool = False,
                 moments=None, integrator: str = "euler", mstep_from: int = 0):
        if int(period) < 1:
            raise ValueError(f"likelihood period must be >= 1, got {period}")
        if integrator not in INTEGRATORS:
            raise InputError(f"likelihood integrator must be one of {INTEGRATORS}, got {integrator!r}")
        self.integrator = integrator
        self.obs, self.X, self.lam = obs, X, float(lam)
        self.period, self.enabled = int(period), bool(enabled)
        self.m_step_from_tweedie = bool(m_step_from_tweedie)
        self.mstep_from = int(mstep_from)
        self.moments = moments
        self.n_lik = self.n_mstep = 0

    def active(self, i: int) -> bool:
        return self.enabled and (i + 1) % self.period == 0

    def __call__(self, state: StepState) -> torch.Tensor | None:
        if not self.active(state.i):
            return None
        if self.m_step_from_tweedie and state.i >= self.mstep_from:
            self.obs.m_step(self.X, state.x0_hat)
            self.n_mstep += 1
        elif self.obs.tracks_speech:
            self.obs.track(state.x0_hat)
        self.n_lik += 1
        if self.moments is None:
            return self.obs.step(state.x, self.X, state.mu, state.sigma, state.g, state.dt,
                                 self.lam, self.integrator)
        mean0, jac, var0 = self.moments(state)
        coef = self.lam * state.g ** 2 * state.dt
        return self.obs.step_from_moments(state.x, self.X, mean0, jac, var0, coef, self.integrator)
