"""Speech enhancement with a VAE prior and an NMF noise model by expectation-maximisation.

Observation model (Leglaive, Girin, Horaud, MLSP 2018; Sadeghi et al., TASLP 2020 for
the audio-visual CVAE): per bin of the noisy linear STFT ``X`` (F, T)

    x_ft = sqrt(g_t) s_ft + b_ft,   s_ft | z_t ~ CN(0, v_ft(z)),   b_ft ~ CN(0, (W H)_ft)

so ``x_ft | z ~ CN(0, V_ft)`` with ``V = g v(z) + W H`` (``g`` (T,) a per-frame gain,
``W`` (F, K), ``H`` (K, T) the noise NMF of rank K). EM alternates an E-step that
approximates the posterior of the latents ``z`` with a set of samples, and an M-step
that updates ``W, H, g`` by the multiplicative majorisation-minimisation rules
(exponent 1/2, never increasing the sample-averaged objective, see :func:`m_step`)
of the expected negative log-likelihood ``sum_ft log V + |x|^2 / V``. The estimate is
the posterior-mean Wiener filter ``S_hat = E[g v / (g v + W H)] X`` over samples of the
final posterior.

* ``vae_mcem``: Monte-Carlo EM (Leglaive et al. 2018; AV: Sadeghi et al. 2020): the
  E-step runs ``n_chains`` random-walk Metropolis-Hastings chains (proposal variance
  ``proposal_var``) on ``p(z | x) ∝ p(x | z) p(z | v)``, continued from iteration to
  iteration; ``burn_in`` steps before the first M-step, ``n_mh`` steps per iteration,
  whose states are the samples. The acceptance is decided per frame, which is exact
  only for a frame-wise prior (``vae``): a sequence model (``rvae``) is refused.
* ``vae_vem``: variational EM: ``q(z) = N(m, diag e^ell)`` with free parameters,
  started at the encoder's posterior of the noisy input, and one Adam step
  (``lr``) on the Monte-Carlo ELBO (``n_chains`` reparameterised samples) per
  iteration, as in the variational inference of dynamical VAEs for enhancement (Bie,
  Leglaive, Alameda-Pineda, Girin, "Unsupervised speech enhancement using dynamical
  variational autoencoders", IEEE/ACM TASLP 2022; here the encoder is not fine-tuned,
  its output only initialises ``q``). Serves every VAE prior, also ``rvae``.

Interface (the VAE counterpart of :class:`avse.enhance.base.DiffusionEnhancer`)::

    enh = ENHANCERS.build("vae_mcem", **conf)
    S_hat = enh(model, X, generator=None, cond=None)   # X, S_hat: (F, T) complex linear STFT
    enh.last_stats  # {"nfe": decoder calls, "em_iterations", "objective": [per iteration], ...}

``model`` is a :class:`avse.nets.vae.SpeechVAE`; ``cond``: its lip conditioning
(``{"cond": (1, Tc, D), "cond_mask", "cond_rel"}`` from
:class:`avse.nets.lip_cond.LipConditioner`). ``X`` is used at its own scale: the STFT of a
peak-normalised waveform, as the prior was trained on (the gains ``g`` absorb the
speech level); an all-zero input is returned unchanged.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod

import torch

from avse.enhance.base import ENHANCERS, constructor_defaults
from avse.enhance.nmf import FLOOR, init_nmf, normalise
from avse.errors import InputError
from avse.nets.vae import kl_gaussians, latent_log_prior


def neg_log_lik(P: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """``log V + P / V`` summed over frequency: (..., F, T) -> (..., T)."""
    return (torch.log(V) + P / V).sum(-2)


def m_step(P: torch.Tensor, Vs: torch.Tensor, W: torch.Tensor, H: torch.Tensor, g: torch.Tensor):
    """One round of multiplicative updates of ``H``, ``W`` (then column-normalised) and
    the gains ``g`` (T,) given speech-variance samples ``Vs`` (S, F, T) and noisy powers
    ``P`` (F, T); each lowers ``sum_s sum_ft log V + P / V`` (``V = g Vs + W H``), the
    exponent-1/2 rules of Leglaive et al. (2018). Returns ``(W, H, g)``."""
    def ratios():
        V = (g * Vs + W @ H).clamp_min(FLOOR)
        return V, P / V ** 2, 1.0 / V

    _, A, B = ratios()
    H = (H * ((W.T @ A.sum(0)) / (W.T @ B.sum(0)).clamp_min(FLOOR)).sqrt()).clamp_min(FLOOR)
    _, A, B = ratios()
    W = (W * ((A.sum(0) @ H.T) / (B.sum(0) @ H.T).clamp_min(FLOOR)).sqrt()).clamp_min(FLOOR)
    W, H = normalise(W, H)
    _, A, B = ratios()
    g = (g * ((Vs * A).sum((0, 1)) / (Vs * B).sum((0, 1)).clamp_min(FLOOR)).sqrt()).clamp_min(FLOOR)
    return W, H, g


class VAEEnhancer(ABC):
    """Shared EM plumbing of the VAE enhancers (module docstring).

    Args:
        n_iter: EM iterations; rank: NMF rank K; n_chains: parallel samples of the E-step;
        n_final: samples of the final Wiener filter (per chain for MCEM);
        seed: of the default generator; silence: max |X| at or below which X is
        returned unchanged; noise_init: starting noise level ``W H`` as a fraction of the
        mean noisy power.
    """

    prior = "vae"   # the kind of model it needs (LoadedModel.kind)
    needs: tuple = ()
    needs_grad = False
    n_sources = 1

    def __init__(self, n_iter: int = 50, rank: int = 10, n_chains: int = 8, n_final: int = 4,
                 seed: int = 0, silence: float = 1e-12, noise_init: float = 0.5):
        checks = [(n_iter >= 1, "n_iter >= 1"), (rank >= 1, "rank >= 1"), (n_chains >= 1, "n_chains >= 1"),
                  (n_final >= 1, "n_final >= 1"), (noise_init > 0, "noise_init > 0")]
        bad = [msg for ok, msg in checks if not ok]
        if bad:
            raise InputError(f"{type(self).__name__}: need {', '.join(bad)}")
        self.n_iter, self.rank, self.n_chains, self.n_final = int(n_iter), int(rank), int(n_chains), int(n_final)
        self.seed, self.silence, self.noise_init = int(seed), float(silence), float(noise_init)
        self.last_stats: dict = {}

    def __call__(self, model, X: torch.Tensor, generator: torch.Generator | None = None,
                 cond: dict | None = None) -> torch.Tensor:
        """Enhance ``X`` (F, T) complex linear STFT -> ``S_hat`` (F, T)."""
        if not torch.is_tensor(X) or not X.is_complex() or X.dim() != 2:
            raise InputError(f"{type(self).__name__}: X must be a complex (F, T) tensor")
        if X.shape[0] != model.n_freq:
            raise InputError(f"{type(self).__name__}: X has {X.shape[0]} bins, the model {model.n_freq}")
        if not bool(torch.isfinite(torch.view_as_real(X)).all()):
            raise InputError(f"{type(self).__name__}: X contains NaN or Inf")
        self.check_model(model)
        t0 = time.perf_counter()
        scale = float(X.abs().max())
        if not scale > self.silence:
            self.last_stats = {"nfe": 0, "em_iterations": 0, "passthrough": "silent", "seconds": 0.0}
            return X.clone()
        gen = generator or torch.Generator(device=X.device).manual_seed(self.seed)
        P = (X.real.float() ** 2 + X.imag.float() ** 2)
        vis = model.visual(**(cond or {})) if model.audio_visual else model.visual()
        self.nfe = 0
        F, T = P.shape
        W, H = init_nmf(F, T, self.rank, generator=gen, target_power=self.noise_init * float(P.mean()),
                        device=P.device)
        g = torch.ones(T, device=P.device)
        Vs, W, H, g, stats = self._run(model, vis, P, W, H, g, gen)
        wiener = (g * Vs / (g * Vs + W @ H).clamp_min(FLOOR)).mean(0)
        stats.update(speech_power=float((g * Vs).mean()), noise_power=float((W @ H).mean()),
                     input_power=float(P.mean()))
        stats.update(nfe=self.nfe, passthrough=None, seconds=time.perf_counter() - t0)
        self.last_stats = stats
        return (wiener * X).to(X.dtype)

    def check_model(self, model) -> None:
        """Refuse a model this method cannot use."""

    def _expand(self, vis: dict | None, n: int) -> dict | None:
        if vis is None:
            return None
        return {k: (None if v is None else v.expand(n, *v.shape[1:])) for k, v in vis.items()}

    def _speech_var(self, model, z: torch.Tensor, vis: dict | None) -> torch.Tensor:
        """``v(z)`` (S, F, T) of latents (S, L, T) (one decoder call)."""
        self.nfe += 1
        return torch.exp(model.decode(z, self._expand(vis, z.shape[0])))

    @abstractmethod
    def _run(self, model, vis, P, W, H, g, gen) -> tuple:
        """EM iterations; returns ``(Vs (S, F, T) final speech-variance samples, W, H, g, stats)``."""


@ENHANCERS.register("vae_mcem")
class VAEMCEM(VAEEnhancer):
    """Monte-Carlo EM with Metropolis-Hastings (Leglaive et al. 2018); module docstring.
    ``burn_in``: MH steps before the first M-step; ``n_mh``: steps per iteration, of
    which the last ``n_keep`` (default all) are the samples of each chain (the paper:
    40 steps, the first 30 discarded); ``proposal_var``: random-walk proposal variance."""

    def __init__(self, burn_in: int = 20, n_mh: int = 2, n_keep: int | None = None,
                 proposal_var: float = 0.01, **kw):
        super().__init__(**kw)
        n_keep = int(n_mh) if n_keep is None else int(n_keep)
        if int(burn_in) < 0 or int(n_mh) < 1 or not 1 <= n_keep <= int(n_mh) or not float(proposal_var) > 0:
            raise InputError("VAEMCEM: need burn_in >= 0, 1 <= n_keep <= n_mh and proposal_var > 0")
        self.burn_in, self.n_mh, self.n_keep, self.proposal_var = int(burn_in), int(n_mh), n_keep, float(proposal_var)

    def check_model(self, model) -> None:
        if model.layers > 0:
            raise InputError(f"vae_mcem accepts each frame's latent separately, exact only for a frame-wise "
                             f"prior; {model.config['model']} models whole sequences: use vae_vem")

    def _run(self, model, vis, P, W, H, g, gen):
        mu, _ = model.encode(P[None], vis)
        self.nfe += 1
        R = self.n_chains
        mu_p, lv_p = model.prior(P.shape[-1], vis, like=mu)
        z = mu.expand(R, *mu.shape[1:]).clone()
        Vs = self._speech_var(model, z, vis)
        accepted, proposed = 0, 0
        objective = []

        def log_post(z_, Vs_, WH):
            """Unnormalised log posterior of each chain's frames (R, T)."""
            return -neg_log_lik(P, g * Vs_ + WH) + latent_log_prior(z_, mu_p, lv_p)

        def chain(n_steps):
            nonlocal z, Vs, accepted, proposed
            out = []
            WH = W @ H   # fixed during a chain (the M-step comes after it)
            cur = log_post(z, Vs, WH)
            for _ in range(n_steps):
                zp = z + self.proposal_var ** 0.5 * torch.randn(z.shape, generator=gen, device=z.device)
                Vp = self._speech_var(model, zp, vis)
                new = log_post(zp, Vp, WH)
                acc = torch.rand(new.shape, generator=gen, device=z.device).log() < new - cur
                z = torch.where(acc[:, None, :], zp, z)
                Vs = torch.where(acc[:, None, :], Vp, Vs)
                cur = torch.where(acc, new, cur)
                accepted, proposed = accepted + int(acc.sum()), proposed + acc.numel()
                out.append(Vs)
            return torch.cat(out)

        chain(self.burn_in)
        for _ in range(self.n_iter):
            samples = chain(self.n_mh)[-self.n_keep * self.n_chains:]
            W, H, g = m_step(P, samples, W, H, g)
            objective.append(float(neg_log_lik(P, g * samples + W @ H).mean(0).sum()))
        final = chain(self.n_final)
        return final, W, H, g, {"em_iterations": self.n_iter, "objective": objective,
                                "acceptance": accepted / max(1, proposed)}


@ENHANCERS.register("vae_vem")
class VAEVEM(VAEEnhancer):
    """Variational EM with a free Gaussian ``q(z)`` (module docstring); ``lr``: Adam step
    size on ``q``'s mean and log-variance."""

    def __init__(self, lr: float = 0.05, **kw):
        super().__init__(**kw)
        if not float(lr) > 0:
            raise InputError(f"VAEVEM: need lr > 0, got {lr}")
        self.lr = float(lr)

    def _sample(self, m, ell, n, gen):
        return m + torch.exp(0.5 * ell) * torch.randn((n,) + tuple(m.shape[1:]), generator=gen, device=m.device)

    def _run(self, model, vis, P, W, H, g, gen):
        with torch.no_grad():
            mu, lv = model.encode(P[None], vis)
            mu_p, lv_p = model.prior(P.shape[-1], vis, like=mu)
        self.nfe += 1
        m, ell = mu.clone().requires_grad_(True), lv.clone().requires_grad_(True)
        opt = torch.optim.Adam([m, ell], lr=self.lr)
        objective = []
        F, T = P.shape
        for _ in range(self.n_iter):
            with torch.enable_grad():
                Vs = self._speech_var(model, self._sample(m, ell, self.n_chains, gen), vis)
                nll = neg_log_lik(P, g * Vs + W @ H).mean(0).sum()
                loss = (nll + kl_gaussians(m, ell, mu_p, lv_p).sum()) / (F * T)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            W, H, g = m_step(P, Vs.detach(), W, H, g)
            objective.append(float(loss.detach()) * F * T)
        with torch.no_grad():
            final = self._speech_var(model, self._sample(m.detach(), ell.detach(), self.n_final, gen), vis)
        return final, W, H, g, {"em_iterations": self.n_iter, "objective": objective}


VAEMCEM.DEFAULTS = constructor_defaults(VAEMCEM)
VAEVEM.DEFAULTS = constructor_defaults(VAEVEM)
