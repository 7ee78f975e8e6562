"""Likelihood guidance strategies: sampler hooks for :class:`avse.diffusion.sampler.PCSampler`.

All hooks see the :class:`~avse.diffusion.sampler.StepState` after the predictor and may
replace ``state.x`` (``(b * K, F, T)`` complex; ``K`` sources per posterior sample). The
observation model is a :class:`avse.enhance.likelihood.GaussianObservation` ``obs``
(its ``measurement`` is the operator ``A``, its variance ``V`` the noise model):

* ``udiffse``: the closed-form step of UDiffSE (Nortier, Sadeghi, Serizel, ICASSP 2024),
  :class:`avse.enhance.likelihood.LikelihoodHook` (re-exported as
  :data:`ClosedFormGuidance`); needs a linear ``A`` with diagonal ``A A^H``.
* ``dps``: :class:`DPSGuidance`, diffusion posterior sampling (Chung et al., ICLR 2023):
  the gradient of the data misfit ``||Y - A(S0_hat)||^2`` with respect to ``S_t`` through
  the Tweedie estimate ``S0_hat = (S_t + sigma_t^2 s(S_t, t)) / mu_t``, i.e. through the
  score network (the sampler must run with ``grad=True``) and through any
  (nonlinear, e.g. compressed-STFT) ``A``.
* ``projection``: :class:`ProjectionGuidance`, mixture consistency: ``S0_hat`` is
  projected onto ``{A(S0) = Y}`` in the linear domain and the sample moved by the
  difference (scaled by ``mu`` of the next time), as in diffusion-based separation
  with a mixture-consistency constraint.
* :class:`TweedieMStep`: the UDiffSE+ M-step (Ayilo et al., ICASSP 2025) of the NMF noise
  variance on ``S0_hat``, for guidance strategies without a built-in M-step.
"""
from __future__ import annotations

import torch

from avse.diffusion.sampler import StepState
from avse.diffusion.sde import SDE
from avse.enhance.likelihood import GaussianObservation, LikelihoodHook
from avse.enhance.measurement import SPLITS
from avse.errors import InputError

ClosedFormGuidance = LikelihoodHook
WEIGHTINGS = ("norm", "gaussian")


class _Periodic:
    """Active on steps ``i`` with ``(i + 1) % period == 0`` and ``i >= start * n_steps``."""

    def __init__(self, period: int = 1, start: float = 0.0):
        if int(period) < 1 or not 0.0 <= start < 1.0:
            raise InputError(f"guidance: need period >= 1 and 0 <= start < 1, got {period}, {start}")
        self.period, self.start = int(period), float(start)

    def active(self, state: StepState) -> bool:
        return (state.i + 1) % self.period == 0 and state.i >= self.start * state.n_steps


class DPSGuidance(_Periodic):
    """DPS step ``S <- S - step * grad_{S_t} L`` (Chung et al., ICLR 2023), ``S`` (b*K, F, T).

    ``weighting``:

    * ``"norm"`` (the paper's rule): ``L = sum_b sqrt(n) ||r_b||_W`` with
      ``r = Y - A(S0_hat)``, ``n`` the number of TF bins, ``W = mean(V) / V`` (``V`` the
      noise variance; 1 for :class:`ZeroNoise`) and ``step = zeta``: the paper's
      ``zeta_i = zeta' / ||r||`` on ``||r||^2`` with ``zeta' = zeta sqrt(n) / 2``, so that the
      per-bin step does not shrink with the utterance length (``zeta`` about 0.01). The
      step norm is bounded whatever the operator's conditioning: the robust choice for
      the nonlinear (compressed) domains;
    * ``"gaussian"``: the reverse-SDE form of UDiffSE, ``S <- S + lam g^2 dt
      grad_{S_t} log p(Y | S_t)`` with ``log p = -||r||^2 / (V + kappa (sigma_t/mu_t)^2)``
      (the inflated variance of pseudo-inverse guidance, Song et al., ICLR 2023); unlike
      ``norm`` this is exact for a Gaussian prior and ``A = I`` in the small-noise limit,
      but it can diverge where the compression makes ``A`` ill-conditioned (low-energy bins
      of a nonlinear-domain operator): use it in the ``compressed`` domain.

    Counters: ``n_steps_done``; ``last_misfit``: ``mean_b ||r_b||^2`` (float).
    """

    def __init__(self, obs: GaussianObservation, Y: torch.Tensor, zeta: float = 0.5,
                 weighting: str = "norm", lam: float = 1.0, kappa: float = 1.0,
                 period: int = 1, start: float = 0.0):
        super().__init__(period, start)
        if weighting not in WEIGHTINGS:
            raise InputError(f"DPSGuidance: weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.obs, self.Y, self.weighting = obs, Y, weighting
        self.zeta, self.lam, self.kappa = float(zeta), float(lam), float(kappa)
        self.n_steps_done, self.last_misfit = 0, None

    def __call__(self, state: StepState):
        if not self.active(state):
            return None
        xp = state.x_prev
        if not xp.requires_grad:
            raise InputError("DPS guidance needs gradients through the score: run the sampler "
                             "with grad=True and a score function that keeps the graph")
        r2 = self.obs.residual(self.Y, state.x0_hat).abs().pow(2)         # (b, F, T)
        V = self.obs.variance().to(r2.device)
        if self.weighting == "norm":
            w = r2 * (V.mean() / V) if bool((V > 0).all()) else r2
            n_bins = w[0].numel()
            loss = (w.flatten(1).sum(1).clamp_min(1e-20) * n_bins).sqrt().sum()
            (grad,) = torch.autograd.grad(loss, xp)
            new = state.x - self.zeta * grad
        else:
            denom = V + self.kappa * (state.sigma / state.mu) ** 2
            (grad,) = torch.autograd.grad(-(r2 / denom).sum(), xp)
            # PyTorch's gradient of a real loss is 2x the complex score convention
            new = state.x + (self.lam * state.g ** 2 * state.dt / 2.0) * grad
        self.n_steps_done += 1
        self.last_misfit = float(r2.detach().flatten(1).sum(1).mean())
        return new.detach()


class ProjectionGuidance(_Periodic):
    """Mixture-consistency projection: ``S <- S + weight * mu(t_next) (P(S0_hat) - S0_hat)``
    with ``P`` :meth:`avse.enhance.measurement.Measurement.project` (``A A^H`` diagonal, e.g.
    the sum of ``K`` sources). On the last step the sample itself is projected
    (``S <- S + weight (P(S) - S)``): with ``weight = 1`` the output satisfies ``A(S) = Y``
    (up to the STFT round trip in the ``wave`` domain). ``split``: how the residual is
    shared among the sources, ``equal`` or ``power`` (the Wiener split by each source's
    power in the bin; :meth:`~avse.enhance.measurement.Measurement.project`)."""

    def __init__(self, measurement, Y: torch.Tensor, sde: SDE, weight: float = 1.0,
                 period: int = 1, start: float = 0.0, split: str = "equal"):
        super().__init__(period, start)
        if measurement.op.gain is None:
            raise InputError("projection guidance needs a diagonal operator (identity or a sum "
                             f"of sources), got {type(measurement.P).__name__}")
        if split not in SPLITS:
            raise InputError(f"projection guidance: split must be one of {SPLITS}, got {split!r}")
        self.meas, self.Y, self.sde, self.weight, self.split = measurement, Y, sde, float(weight), split
        self.n_steps_done = 0

    def __call__(self, state: StepState):
        if not self.active(state):
            return None
        with torch.no_grad():
            self.n_steps_done += 1
            if state.last:  # the sample is the estimate: project it
                x = state.x.detach()
                return x + self.weight * (self.meas.project(x, self.Y, self.split) - x)
            x0 = state.x0_hat.detach()
            mu = float(self.sde.marginal(torch.tensor(state.t_next, dtype=torch.float64))[0])
            return state.x.detach() + (self.weight * mu) * (self.meas.project(x0, self.Y, self.split) - x0)


class TweedieMStep(_Periodic):
    """NMF M-step of ``obs`` on the Tweedie estimate every ``period`` steps (UDiffSE+)."""

    def __init__(self, obs: GaussianObservation, Y: torch.Tensor, period: int = 1,
                 start: float = 0.0):
        super().__init__(period, start)
        self.obs, self.Y, self.n_mstep = obs, Y, 0

    def __call__(self, state: StepState):
        if self.active(state):
            with torch.no_grad():
                self.obs.m_step(self.Y, state.x0_hat.detach())
            self.n_mstep += 1
        return None
