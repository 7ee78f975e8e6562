"""The diffusion-enhancer base: shared settings, the noise model, the call interface.

Every enhancer of :data:`ENHANCERS` (``udiffse``, ``udiffse_plus``
(:mod:`avse.enhance.udiffse`), ``dps_informed``, ``buddy``, ``separate``, ``joint``
(:mod:`avse.enhance.restoration`), ``cascade``) derives from :class:`DiffusionEnhancer`
(the cascade only chains them; ``wpe``, :mod:`avse.enhance.wpe`, calls no prior and has
the same call interface) and implements ``_run``: reverse diffusion with the prior's score
plus a likelihood (or guidance) term for the observation.

Noise model: ``noise`` (a name of :data:`avse.enhance.noise_choice.NOISES`: ``nmf``, the
papers' IS-NMF updated in the M-steps; ``stationary``, a fixed quantile PSD; ``fixed``;
``zero``) with its options in ``noise_conf`` (e.g. ``{domain: linear, bias: 2.0}``);
see :mod:`avse.enhance.noise_choice`.

Interface::

    enh = ENHANCERS.build("udiffse", **conf)
    S_hat = enh(score_fn, sde, X, generator=None, **aux)   # X, S_hat: (F, T) complex
    enh.last_stats   # {"nfe", "em_iterations", "m_steps", "lik_steps", "is_divergence", ...}
    UDiffSE.DEFAULTS # constructor defaults (dict)

``X`` is the noisy compressed complex STFT of one utterance (any ``T``; the caller pads
the frame axis for the network). It is divided by ``max |X|`` and the result scaled
back. The ``b = n_samples`` samples run as one batch ``(b, F, T)``. Network calls:
``n_em * n_steps * (1 + n_corrector)`` (300 by default) for ``udiffse``,
``n_steps * (1 + n_corrector)`` (60) for ``udiffse_plus``.

A noise PSD estimated elsewhere (chunked enhancement of a long file:
:mod:`avse.enhance.chunked`) comes as ``noise_psd=P`` (F, 1) in the units of the noise
model's power of ``X`` (:meth:`avse.enhance.noise_choice._PSDModel.power`); it replaces
the model's own estimate from ``X``, for a noise model with ``file_psd`` (an error
otherwise).

Silence passthrough: if ``max |X| <= silence`` (default 1e-12; an all-zero input) the
input is returned unchanged (zeros for zeros) without calling the network, so no
division by zero and no NaN. All tensors live on ``X``'s device; without a
``generator``, one seeded with ``seed`` is made there (deterministic per seed).
"""
from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
import time

import torch

from avse.diffusion.sampler import CountingScore, PCSampler, ScoreFn, randn_like
from avse.diffusion.sde import SDE
from avse.enhance.likelihood import INTEGRATORS, GaussianObservation
from avse.enhance.noise_choice import build_noise
from avse.errors import InputError
from avse.utils.registry import Registry

ENHANCERS = Registry("enhancer")


def aux_keyword(need: str) -> str:
    """The keyword argument of an enhancer input: a data-dir table ``"<name>.scp"`` comes
    as ``name=...``, any other need under its own name."""
    return need[:-4] if need.endswith(".scp") else need


def constructor_defaults(cls) -> dict:
    """Constructor keyword defaults of ``cls`` and its bases (``cls.DEFAULTS``)."""
    out: dict = {}
    for c in reversed(cls.__mro__):
        if "__init__" in vars(c) and c is not object:
            for p in inspect.signature(c.__init__).parameters.values():
                if p.default is not inspect.Parameter.empty:
                    out[p.name] = p.default
    return out


def bound_sources(score_fn, n_sources: int, who: str) -> bool:
    """True when ``score_fn`` conditions each of ``n_sources > 1`` sources on its own talker
    (its ``n_sources`` attribute, :class:`avse.nets.lip_cond.ConditionedScore`: row ``j * K + k``
    is talker ``k``'s), so that source ``k`` is talker ``k`` in every sample. A score
    function of ``K > 1`` sources for an enhancer of another number is an error."""
    k = int(getattr(score_fn, "n_sources", 1))
    if k > 1 and k != int(n_sources):
        raise InputError(f"{who}: the score function conditions {k} sources on their own talkers' lips, "
                         f"but the method samples {n_sources}")
    return k > 1


class DiffusionEnhancer(ABC):
    """Shared settings and plumbing of the diffusion enhancers (see module docstring).

    ``init``: start of each pass, ``"noisy"`` ``S_T = X + sigma(T) z`` (UDiffSE),
    ``"scaled"`` ``mu(T) X + sigma(T) z`` or ``"prior"`` ``sigma(T) z`` (a posterior
    sampler of several sources also has ``"lips"``,
    :class:`avse.enhance.posterior.PosteriorEnhancer`).
    ``t_start``: the time the reverse pass starts at (``None``: the SDE's ``T``); below
    ``T`` the pass starts from the ``init`` estimate noised to that time,
    ``mu(t_start) S_init + sigma(t_start) z`` (SDEdit, Meng et al., ICLR 2022), and its
    ``n_steps`` steps span ``[t_eps, t_start]``.
    ``noise``, ``noise_conf``: the noise model (module docstring; ``noise_conf.gamma`` of
    ``nmf``: exponent of the IS multiplicative updates, 1 heuristic, 0.5 MM).
    ``lik_integrator``: ``"euler"`` (the papers' step) or ``"exp"`` (exact over the step,
    never overshoots the observation; see
    :meth:`avse.enhance.likelihood.GaussianObservation.step_from_moments`).
    """

    def __init__(self, n_steps: int = 30, snr: float = 0.5, n_corrector: int = 1,
                 lam: float = 1.5, lik_period: int = 2, n_samples: int = 4,
                 init: str = "noisy", seed: int = 0, silence: float = 1e-12,
                 lik_integrator: str = "euler", noise: str = "nmf", noise_conf: dict | None = None,
                 t_start: float | None = None):
        checks = [(n_steps >= 2, "n_steps >= 2"), (snr >= 0, "snr >= 0"),
                  (n_corrector >= 0, "n_corrector >= 0"), (lam >= 0, "lam >= 0"),
                  (lik_period >= 1, "lik_period >= 1"), (n_samples >= 1, "n_samples >= 1"),
                  (init in self._inits, f"init in {self._inits}"),
                  (t_start is None or float(t_start) > 0, "t_start > 0 (or null: the SDE's T)"),
                  (lik_integrator in INTEGRATORS, f"lik_integrator in {INTEGRATORS}")]
        bad = [msg for ok, msg in checks if not ok]
        if bad:
            raise InputError(f"{type(self).__name__}: need {', '.join(bad)}")
        self.n_steps, self.snr, self.n_corrector = int(n_steps), float(snr), int(n_corrector)
        self.lam, self.lik_period = float(lam), int(lik_period)
        self.n_samples = int(n_samples)
        self.init, self.seed, self.silence = init, int(seed), float(silence)
        self.t_start = None if t_start is None else float(t_start)
        self.lik_integrator = lik_integrator
        try:
            self.noise, self.noise_model = noise, build_noise(noise, noise_conf)
        except InputError as e:
            raise InputError(f"{type(self).__name__}: {e}") from e
        if self.noise_model.needs_frontend:   # the compression exponent comes from the front-end
            self.needs = tuple(dict.fromkeys(type(self).needs + ("frontend",)))
        if self.noise_model.needs:            # per-utterance inputs of the noise model (an embedding)
            self.needs = tuple(dict.fromkeys(self.needs + tuple(self.noise_model.needs)))
        self._noise_inputs: dict = {}
        self.last_stats: dict = {}

    # -- helpers -------------------------------------------------------------------
    def _check(self, X: torch.Tensor) -> None:
        if not torch.is_tensor(X) or not X.is_complex() or X.dim() != 2:
            raise InputError(f"{type(self).__name__}: X must be a complex (F, T) tensor, got "
                             f"{getattr(X, 'dtype', type(X))} {tuple(getattr(X, 'shape', ()))}")
        if not bool(torch.isfinite(torch.view_as_real(X)).all()):
            raise InputError(f"{type(self).__name__}: X contains NaN or Inf")

    def _generator(self, X: torch.Tensor, generator):
        if generator is not None:
            return generator
        return torch.Generator(device=X.device).manual_seed(self.seed)

    def _noised(self, est: torch.Tensor, sde: SDE, generator, b: int) -> torch.Tensor:
        """The start of a pass from the estimate ``est`` (rows, F, T), repeated ``b`` times:
        ``mu S_init + sigma z`` at the start time (SDEdit below ``T``), ``sigma z`` for
        ``prior``, and ``S_init + sigma(T) z`` for ``noisy`` at ``T`` (UDiffSE's start)."""
        t0 = sde.T if self.t_start is None else self.t_start
        mu, sigma = (float(v) for v in sde.marginal(torch.tensor(t0, dtype=torch.float64)))
        if self.init == "prior":
            mean = torch.zeros_like(est)
        else:
            mean = est if (self.init == "noisy" and t0 >= sde.T) else mu * est
        mean = mean.repeat(b, 1, 1)
        return mean + sigma * randn_like(mean, generator)

    def _start(self, Xn: torch.Tensor, sde: SDE, generator) -> torch.Tensor:
        """``S_{t_start}`` (b, F, T) for one pass (``init`` ``noisy``, ``scaled``, ``prior``)."""
        return self._noised(Xn[None], sde, generator, self.n_samples)

    def _noise(self, Xn: torch.Tensor, generator, frontend=None, measurement=None, psd=None
               ) -> GaussianObservation:
        """The noise model of one utterance (:meth:`avse.enhance.noise_choice.NoiseChoice.observation`);
        ``psd``: the normalised ``noise_psd`` of :meth:`__call__` (None: estimated from ``Xn``)."""
        return self.noise_model.observation(Xn, generator, frontend, measurement, psd=psd, **self._noise_inputs)

    def _sampler(self, sde: SDE, grad: bool = False) -> PCSampler:
        return PCSampler(sde, n_steps=self.n_steps, snr=self.snr, n_corrector=self.n_corrector,
                         grad=grad, t_start=self.t_start)

    # Per-utterance inputs the enhancer needs, passed as keyword arguments ``aux``:
    # ``"frontend"`` (the model's SpectralFrontEnd) or a data-dir table ``"<name>.scp"``
    # (its entry for the utterance, loaded, as ``<name>=...``; e.g. ``rir1.scp`` ->
    # ``rir1=np.ndarray``). ``needs_grad``: the score function must keep the autograd
    # graph (DPS). ``n_sources``: K > 1 returns (K, F, T); the caller binds a conditioning
    # per source when the prior has one (:func:`bound_sources`).
    needs: tuple = ()
    needs_grad: bool = False
    _inits: tuple = ("noisy", "scaled", "prior")   # the ``init`` choices
    n_sources: int = 1
    sources_bound: bool = False   # this call's sources are bound to talkers (set by __call__)

    def _check_aux(self, aux: dict) -> None:
        for need in self.needs:
            kw = aux_keyword(need)
            if aux.get(kw) is None:
                what = f"the data dir's {need} entry" if need.endswith(".scp") else need
                raise InputError(f"{type(self).__name__}: needs {what} (keyword {kw}=...)")

    def __call__(self, score_fn: ScoreFn, sde: SDE, X: torch.Tensor,
                 generator: torch.Generator | None = None, **aux) -> torch.Tensor:
        """Restore ``X`` (F, T) complex -> ``S_hat`` (F, T) complex, or (K, F, T) for
        ``n_sources = K > 1`` (same device/dtype). ``aux``: see :attr:`needs`, and
        ``noise_psd`` (module docstring)."""
        self._check(X)
        self._check_aux(aux)
        self.sources_bound = bound_sources(score_fn, self.n_sources, type(self).__name__)
        noise_psd = aux.pop("noise_psd", None)
        self._noise_inputs = {aux_keyword(n): aux.pop(aux_keyword(n)) for n in self.noise_model.needs}
        if noise_psd is not None and not self.noise_model.file_psd:
            raise InputError(f"{type(self).__name__}: noise model {self.noise!r} takes no noise PSD "
                             "estimated elsewhere (only stationary, or nmf with init: quantile)")
        t0 = time.perf_counter()
        scale = float(X.abs().max())
        if not scale > self.silence:
            self.last_stats = {"nfe": 0, "em_iterations": 0, "m_steps": 0, "lik_steps": 0,
                               "is_divergence": None, "passthrough": "silent", "seconds": 0.0}
            return X.clone() if self.n_sources == 1 else X.expand(self.n_sources, *X.shape).clone()
        counted = CountingScore(score_fn)
        if noise_psd is not None:   # to the units of X / scale
            aux["noise_psd"] = noise_psd / scale ** self.noise_model.power_exponent(aux.get("frontend"))
        with torch.set_grad_enabled(self.needs_grad):
            S, stats = self._run(counted, sde, X / scale, self._generator(X, generator), **aux)
        stats.update(nfe=counted.calls, scale=scale, passthrough=None,
                     seconds=time.perf_counter() - t0)
        self.last_stats = stats
        return (self._output(S.detach()) * scale).to(X.dtype)

    def _output(self, S: torch.Tensor) -> torch.Tensor:
        """Final samples (b, F, T) -> their mean (F, T)."""
        return S.mean(0)

    @abstractmethod
    def _run(self, score_fn, sde, Xn, generator, **aux) -> tuple[torch.Tensor, dict]:
        """Return the final samples (b, F, T) (normalised units) and statistics."""
