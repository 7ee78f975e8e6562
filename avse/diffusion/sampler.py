"""Reverse-diffusion predictor-corrector (PC) sampling with per-step hooks.

Predictor-corrector sampling of Song et al., "Score-based generative modeling through
stochastic differential equations", ICLR 2021, as used for the clean-speech prior of
UDiffSE (Nortier, Sadeghi, Serizel, ICASSP 2024) and UDiffSE+ (Ayilo et al., ICASSP 2025).

Conventions
-----------
* Samples are complex spectrograms ``x`` of shape ``(B, F, T)`` (complex64, compressed
  STFT domain); times are ``(B,)`` float tensors.
* A score function is any callable ``score_fn(x, t) -> (B, F, T) complex``. The complex
  score follows the denoising-score-matching target ``s(x_t) = -z / sigma_t`` for
  ``x_t = mu_t x0 + sigma_t z``: for ``x ~ CN(a, v)`` (total variance ``v``) it is
  ``s(x) = -(x - a) / v``. Complex white noise ``z`` has unit total variance.
* With this convention the reverse SDE is ``dx = [f(x, t) - g(t)^2 s(x, t)] dt + g(t) dw``
  (the same form as for real vectors) and Langevin dynamics targeting ``p`` is
  ``x <- x + eps s(x) + sqrt(2 eps) z``. (Check: writing ``x = x_r + i x_i``, each real
  component has variance v/2, real gradient ``2 Re s`` and noise variance 1/2.)

Time grid
---------
The score is evaluated at the ``N = n_steps`` times ``sde.timesteps(N)``, uniform from
``T`` down to ``t_eps`` (inclusive), or from ``t_start < T`` (a pass that starts from a
partly noised estimate, SDEdit: Meng et al., "SDEdit: guided image synthesis and editing
with stochastic differential equations", ICLR 2022; the caller draws ``x_{t_start}``).
Step ``i < N - 1`` goes from ``t_i`` to ``t_{i+1}``
(``dt = (t_start - t_eps) / (N - 1)``); the last step goes from ``t_eps`` to 0 with
``dt = t_eps`` and adds no noise: its output is the predictor mean, a final denoising
step that removes most of the residual noise ``sigma(t_eps)``.

Per step ``i`` (all times ``t_i``):

1. corrector, ``n_corrector`` times (annealed Langevin dynamics, one network call each):
   ``eps = (r sigma_t)^2``, ``x <- x + eps s(x, t) + sqrt(2 eps) z``: the step size of
   the SGMSE+/UDiffSE samplers (REFERENCE section 2). With ``|s| ~ |z| / sigma_t`` the
   ratio of the gradient-step norm to the noise norm is ``sqrt(eps / 2) / sigma_t =
   r / sqrt(2)`` (Song et al. 2021, Alg. 5, whose ``2 alpha`` factor would make it ``r``).
2. predictor (reverse Euler-Maruyama, one network call):
   ``x_mean = x - [f(x, t) - g^2 s(x, t)] dt``, ``x = x_mean + g sqrt(dt) z``
   (no noise on the last step).
3. hooks: each ``hook(state)`` may return a new ``x`` (or ``None``); posterior samplers
   insert their likelihood step here (later hooks see the updated ``state.x``).
   ``state`` is a :class:`StepState` that carries
   the predictor's score, so the Tweedie estimate ``state.x0_hat`` costs no network call.

Network calls: ``n_steps * (1 + n_corrector)`` (60 for the default 30 steps).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

import torch

from avse.diffusion.sde import SDE, _bcast

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Hook = Callable[["StepState"], Optional[torch.Tensor]]


class CountingScore:
    """Wraps a score function and counts its calls (network function evaluations)."""

    def __init__(self, score_fn: ScoreFn):
        self.fn = score_fn
        self.calls = 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.fn(x, t)

    def __getattr__(self, name):
        """Other attributes are the wrapped function's (e.g. ``n_sources``, ``envelope``)."""
        if name == "fn":
            raise AttributeError(name)
        return getattr(self.fn, name)


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise like ``x`` (unit total variance for complex dtypes) from ``generator``."""
    return torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)


@dataclass
class StepState:
    """What a hook sees after the predictor of step ``i`` (of ``n_steps``).

    ``x`` (B, F, T): the sample after the predictor (now at time ``t_next``);
    ``x_prev``: the predictor's input (at time ``t``); ``score``: ``s(x_prev, t)``;
    ``t``, ``t_next``: floats (``t_next = 0`` on the last step); ``dt = t - t_next``;
    ``mu``, ``sigma``, ``g``: floats, marginal mean factor, std and diffusion at ``t``.
    ``extra`` is a scratch dict that hooks may share within one pass.
    """

    i: int
    n_steps: int
    t: float
    t_next: float
    dt: float
    mu: float
    sigma: float
    g: float
    x: torch.Tensor
    x_prev: torch.Tensor
    score: torch.Tensor
    generator: torch.Generator | None = None
    extra: dict = field(default_factory=dict)

    @property
    def last(self) -> bool:
        return self.i == self.n_steps - 1

    @property
    def x0_hat(self) -> torch.Tensor:
        """Tweedie posterior-mean estimate ``(x_prev + sigma_t^2 s) / mu_t`` (B, F, T)."""
        return (self.x_prev + self.sigma ** 2 * self.score) / self.mu


class PCSampler:
    """Predictor-corrector reverse-diffusion sampler (see module docstring).

    ``sde``: an :class:`avse.diffusion.sde.SDE`; ``n_steps``: N >= 2 predictor steps;
    ``snr``: corrector signal-to-noise ratio r; ``n_corrector``: Langevin steps per
    predictor step (0 disables the corrector). After each :meth:`sample`, ``self.nfe``
    holds the number of score calls it made. ``grad``: if true, the predictor's score is
    computed with autograd on (``state.x_prev`` requires grad), so a hook can
    differentiate e.g. ``state.x0_hat`` through the network (DPS); otherwise sampling
    runs under ``torch.no_grad``. ``t_start``: the time of the first step (default
    ``sde.T``; the ``n_steps`` steps then span ``[t_eps, t_start]`` and ``init`` must be a
    draw at ``t_start``).
    """

    def __init__(self, sde: SDE, n_steps: int = 30, snr: float = 0.5, n_corrector: int = 1,
                 grad: bool = False, t_start: float | None = None):
        if int(n_steps) < 2:
            raise ValueError(f"n_steps must be >= 2, got {n_steps}")
        if int(n_corrector) < 0 or snr < 0:
            raise ValueError(f"need n_corrector >= 0 and snr >= 0, got {n_corrector}, {snr}")
        self.sde = sde
        self.n_steps = int(n_steps)
        self.snr = float(snr)
        self.n_corrector = int(n_corrector)
        self.grad = bool(grad)
        self.t_start = None if t_start is None else float(t_start)
        sde.timesteps(2, start=self.t_start)   # checks t_eps < t_start <= T
        self.nfe = 0

    def times(self) -> list[tuple[float, float]]:
        """``[(t_i, dt_i)]`` for the ``n_steps`` steps (last: ``(t_eps, t_eps)``)."""
        ts = self.sde.timesteps(self.n_steps, start=self.t_start).double().tolist()
        return [(ts[i], ts[i] - ts[i + 1] if i + 1 < len(ts) else ts[i]) for i in range(len(ts))]

    def corrector_step(self, score_fn: ScoreFn, x: torch.Tensor, t: torch.Tensor, sigma: float,
                       generator=None, return_parts: bool = False):
        """One annealed Langevin step at marginal std ``sigma``:
        ``x + eps s(x, t) + sqrt(2 eps) z`` with ``eps = (snr sigma)^2``.
        With ``return_parts``, returns ``(x_new, eps * s, sqrt(2 eps) z)``."""
        eps = (self.snr * sigma) ** 2
        step = eps * score_fn(x, t)
        noise = math.sqrt(2.0 * eps) * randn_like(x, generator)
        return (x + step + noise, step, noise) if return_parts else x + step + noise

    def predictor_step(self, x: torch.Tensor, score: torch.Tensor, t: torch.Tensor, g: float,
                       dt: float, generator=None, last: bool = False) -> torch.Tensor:
        """Reverse Euler-Maruyama from ``t`` to ``t - dt`` given ``score = s(x, t)``:
        ``x - [f(x, t) - g^2 score] dt (+ g sqrt(dt) z unless last)``."""
        x_mean = x - (self.sde.drift(x, t) - g ** 2 * score) * dt
        return x_mean if last else x_mean + g * math.sqrt(dt) * randn_like(x, generator)

    def init(self, init, device=None, generator=None) -> torch.Tensor:
        """A tensor is used as ``x_T`` (copied); a shape draws ``x_T`` from the SDE prior
        (a pass from ``t_start`` needs a tensor: the estimate it starts from, noised)."""
        if torch.is_tensor(init):
            return init.clone()
        if self.t_start is not None and self.t_start < self.sde.T:
            raise ValueError("a pass from t_start < T starts from a given x_{t_start}, not a shape")
        return self.sde.prior_sample(tuple(init), device=device, generator=generator)

    def sample(self, score_fn: ScoreFn, init, generator: torch.Generator | None = None,
               hooks: Sequence[Hook] | Hook = (), device=None) -> torch.Tensor:
        """Run one reverse pass from ``init`` (x_T tensor ``(B, F, T)`` or a shape).

        Returns the final sample ``(B, F, T)`` (the noise-free predictor mean of the last
        step, after the hooks). ``generator`` drives all noise (on the tensor's device).
        """
        with torch.set_grad_enabled(self.grad):
            return self._sample(score_fn, init, generator, hooks, device)

    def _sample(self, score_fn, init, generator, hooks, device) -> torch.Tensor:
        hooks = [hooks] if callable(hooks) else list(hooks)
        counted = score_fn if isinstance(score_fn, CountingScore) else CountingScore(score_fn)
        calls0 = counted.calls
        x = self.init(init, device=device, generator=generator)
        B = x.shape[0]
        extra: dict = {}
        for i, (t, dt) in enumerate(self.times()):
            tt = torch.full((B,), t, dtype=torch.float32, device=x.device)
            mu, sigma = (float(v) for v in self.sde.marginal(torch.tensor(t, dtype=torch.float64)))
            g = float(self.sde.diffusion(torch.tensor(t, dtype=torch.float64)))
            with torch.no_grad():
                for _ in range(self.n_corrector):
                    x = self.corrector_step(counted, x, tt, sigma, generator)
            if self.grad:
                x = x.detach().requires_grad_(True)
            s = counted(x, tt)
            last = i == self.n_steps - 1
            x_new = self.predictor_step(x, s, tt, g, dt, generator, last)
            state = StepState(i=i, n_steps=self.n_steps, t=t, t_next=0.0 if last else t - dt,
                              dt=dt, mu=mu, sigma=sigma, g=g, x=x_new, x_prev=x, score=s,
                              generator=generator, extra=extra)
            for hook in hooks:
                out = hook(state)
                if out is not None:
                    state.x = out
            x = state.x.detach() if self.grad else state.x
        self.nfe = counted.calls - calls0
        return x


def sample(score_fn: ScoreFn, sde: SDE, init, n_steps: int = 30, snr: float = 0.5,
           n_corrector: int = 1, generator: torch.Generator | None = None,
           hooks: Iterable[Hook] | Hook = (), stats: dict | None = None,
           device=None, grad: bool = False) -> torch.Tensor:
    """Functional form of :meth:`PCSampler.sample`; ``stats['nfe']`` gets the call count."""
    sampler = PCSampler(sde, n_steps=n_steps, snr=snr, n_corrector=n_corrector, grad=grad)
    x = sampler.sample(score_fn, init, generator=generator, hooks=hooks, device=device)
    if stats is not None:
        stats["nfe"] = sampler.nfe
    return x


def gaussian_score(mean: torch.Tensor, var: torch.Tensor | float, sde: SDE) -> ScoreFn:
    """Exact score of ``x_t`` when ``x0 ~ CN(mean, var)`` per bin (for tests and checks).

    ``x_t ~ CN(mu_t mean, mu_t^2 var + sigma_t^2)``, so
    ``s(x, t) = -(x - mu_t mean) / (mu_t^2 var + sigma_t^2)``. ``mean`` broadcasts
    against ``x`` (e.g. ``(F, T)``), ``var`` is real (same broadcasting).
    """

    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        mu, sigma = sde.marginal(t)
        mu, sigma = _bcast(mu, x), _bcast(sigma, x)
        return -(x - mu * mean) / (mu ** 2 * var + sigma ** 2)

    return score
