"""Posterior sampling (likelihood step) and the UDiffSE / UDiffSE+ enhancers, with a
Gaussian clean-speech 'prior' whose score is known in closed form (no network)."""
import math

import pytest
import torch

from avse.diffusion.sampler import StepState, gaussian_score, sample
from avse.diffusion.sde import OUVE
from avse.enhance import ENHANCERS
from avse.enhance.likelihood import FixedVarianceNoise, GaussianNMFNoise, LikelihoodHook
from avse.enhance.nmf import NMF
from avse.errors import InputError


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _cn(shape, g):
    return torch.randn(shape, dtype=torch.complex64, generator=g)


def _gaussian_posterior_problem(s2_range, v_range, seed=0, F=4, T=8):
    """x0 ~ CN(0, s2), X = x0 + n, n ~ CN(0, v); returns (g, s2, v, X, wiener, post_var)."""
    g = torch.Generator().manual_seed(seed)
    s2 = s2_range[0] + (s2_range[1] - s2_range[0]) * torch.rand(F, T, generator=g)
    v = v_range[0] + (v_range[1] - v_range[0]) * torch.rand(F, T, generator=g)
    X = s2.sqrt() * _cn((F, T), g) + v.sqrt() * _cn((F, T), g)
    return g, s2, v, X, s2 / (s2 + v) * X, s2 * v / (s2 + v)


def _posterior_start(sde, wiener, post_var, B, g):
    """Exact p(S_T | X) = CN(mu_T E[s|X], mu_T^2 Var[s|X] + sigma_T^2)."""
    mu, sig = sde.marginal(torch.tensor(sde.T))
    return mu * wiener + torch.sqrt(mu ** 2 * post_var + sig ** 2) * _cn((B,) + wiener.shape, g)


def _rel_err(est, ref):
    return float((est - ref).abs().pow(2).mean().sqrt() / ref.abs().pow(2).mean().sqrt())


def test_likelihood_score_is_gradient_of_log_likelihood():
    """UDiffSE step direction: grad_{S_t} log CN(X; S_t/mu, (sigma/mu)^2 + V) = autograd / 2."""
    g = torch.Generator().manual_seed(0)
    X, V = _cn((6, 5), g), 0.05 + torch.rand(6, 5, generator=g)
    S = _cn((3, 6, 5), g).requires_grad_(True)
    mu, sigma = 0.6, 0.3
    logp = -((X - S / mu).abs() ** 2 / ((sigma / mu) ** 2 + V)).sum()
    logp.backward()
    obs = FixedVarianceNoise(V)
    torch.testing.assert_close(obs.score(S.detach(), X, mu, sigma), S.grad / 2)
    step = obs.step(S.detach(), X, mu, sigma, g=0.8, dt=0.1, lam=1.5)
    torch.testing.assert_close(step - S.detach(), 1.5 * 0.64 * 0.1 * S.grad / 2)


def test_posterior_sampler_converges_to_wiener_mean():
    """Sampler + likelihood hook with the exact moments of p(S0 | S_t) for a Gaussian prior:
    the posterior mean error shrinks with the number of steps."""
    sde = OUVE()
    g, s2, v, X, wiener, pv = _gaussian_posterior_problem((0.05, 1.0), (0.02, 0.5))

    def exact_moments(state: StepState):
        mu, sig = state.mu, state.sigma
        jac = mu * s2 / (mu ** 2 * s2 + sig ** 2)
        return jac * state.x, jac, s2 * sig ** 2 / (mu ** 2 * s2 + sig ** 2)

    errs, var_ratio = {}, None
    for n in (10, 40, 200):
        hook = LikelihoodHook(FixedVarianceNoise(v), X, lam=1.0, period=1, moments=exact_moments)
        S = sample(gaussian_score(torch.zeros(()), s2, sde), sde,
                   _posterior_start(sde, wiener, pv, 12000, g), n_steps=n, n_corrector=0,
                   generator=g, hooks=[hook])
        errs[n] = _rel_err(S.mean(0), wiener)
        var_ratio = float(((S - S.mean(0)).abs().pow(2).mean(0) / pv).mean())
    assert errs[10] > errs[40] > errs[200], errs
    assert errs[200] < 0.015, errs
    assert 0.9 < var_ratio < 1.1


def test_udiffse_likelihood_step_flat_prior_limit():
    """UDiffSE's approximation S0 | S_t ~ CN(S_t/mu, (sigma/mu)^2) is accurate when the
    prior is broad (s2 >> (sigma_T/mu_T)^2 ~ 5): the posterior mean then approaches the
    Wiener mean as steps grow. (For narrow priors it is biased: see the module doc.)"""
    sde = OUVE()
    g, s2, v, X, wiener, pv = _gaussian_posterior_problem((4.0, 8.0), (2.0, 6.0), seed=1)
    errs = {}
    for n in (10, 40, 200):
        hook = LikelihoodHook(FixedVarianceNoise(v), X, lam=1.0, period=1)
        S = sample(gaussian_score(torch.zeros(()), s2, sde), sde,
                   _posterior_start(sde, wiener, pv, 12000, g), n_steps=n, n_corrector=0,
                   generator=g, hooks=[hook])
        errs[n] = _rel_err(S.mean(0), wiener)
    assert errs[10] > errs[40] > errs[200], errs
    assert errs[200] < 0.04, errs


def _speech_plus_noise(F=256, T=64, seed=0):
    """Sparse 'speech' (per-bin CN(0, s2), most bins weak) plus coloured Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    s2 = 0.05 * torch.rand(F, T, generator=g) ** 4 + 1e-4
    noise_var = torch.linspace(2e-3, 5e-4, F)[:, None].expand(F, T)
    S = s2.sqrt() * _cn((F, T), g)
    return s2, S + noise_var.sqrt() * _cn((F, T), g)


def _prior_score(s2, X, sde):
    """Score of the Gaussian prior in the enhancer's normalised units (X / max|X|)."""
    return gaussian_score(torch.zeros(()), s2 / X.abs().max() ** 2, sde)


@pytest.mark.parametrize("name,nfe,m_steps,lik_steps", [("udiffse", 300, 5, 60),
                                                        ("udiffse_plus", 60, 15, 15)])
def test_enhancers_end_to_end(name, nfe, m_steps, lik_steps):
    sde = OUVE()
    s2, X = _speech_plus_noise()
    score = _prior_score(s2, X, sde)
    enh = ENHANCERS.build(name)
    calls = []
    counted = lambda x, t: (calls.append(x.shape), score(x, t))[1]
    out = enh(counted, sde, X)
    assert out.shape == X.shape and out.dtype == X.dtype and torch.isfinite(out.real).all()
    st = enh.last_stats
    assert len(calls) == st["nfe"] == nfe and all(c == (4, 256, 64) for c in calls)
    assert st["m_steps"] == m_steps and st["lik_steps"] == lik_steps
    assert math.isfinite(st["is_divergence"])
    # Deterministic for a seed, different for another; an explicit generator works too.
    assert torch.equal(out, ENHANCERS.build(name)(score, sde, X))
    assert not torch.equal(out, ENHANCERS.build(name, seed=1)(score, sde, X))
    out_g = enh(score, sde, X, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out_g, enh(score, sde, X, generator=torch.Generator().manual_seed(3)))
    # Scale equivariance of the max-normalisation (score given in normalised units).
    torch.testing.assert_close(ENHANCERS.build(name)(score, sde, 3 * X), 3 * out,
                               rtol=1e-4, atol=1e-5)


def test_enhancer_options_change_calls_and_any_length_works():
    sde = OUVE()
    s2, X = _speech_plus_noise(F=32, T=37)
    score = _prior_score(s2, X, sde)
    enh = ENHANCERS.build("udiffse", skip_first=False, n_corrector=0, n_em=2, n_steps=10,
                          n_samples=2, lik_period=1)
    out = enh(score, sde, X)
    assert out.shape == (32, 37) and torch.isfinite(out.real).all()
    assert enh.last_stats["nfe"] == 2 * 10 and enh.last_stats["lik_steps"] == 20
    enh = ENHANCERS.build("udiffse_plus", n_steps=12, lik_period=3, init="scaled")
    enh(score, sde, X)
    assert enh.last_stats["nfe"] == 24 and enh.last_stats["m_steps"] == 4
    # nmf_start 0.5: M-steps only on the active steps i >= 6 (i = 8, 11); likelihood on all 4
    enh = ENHANCERS.build("udiffse_plus", n_steps=12, lik_period=3, nmf_start=0.5)
    enh(score, sde, X)
    assert enh.last_stats["m_steps"] == 2 and enh.last_stats["lik_steps"] == 4
    with pytest.raises(InputError, match="nmf_start"):
        ENHANCERS.build("udiffse_plus", nmf_start=1.0)


def test_silent_input_passthrough():
    sde = OUVE()
    X = torch.zeros(256, 64, dtype=torch.complex64)

    def never(x, t):
        raise AssertionError("the network must not be called on silence")

    for name in ("udiffse", "udiffse_plus"):
        enh = ENHANCERS.build(name)
        out = enh(never, sde, X)
        assert torch.equal(out, X) and enh.last_stats["nfe"] == 0
        assert enh.last_stats["passthrough"] == "silent"


def test_bad_inputs_and_config():
    sde = OUVE()
    enh = ENHANCERS.build("udiffse")
    score = lambda x, t: -x
    for bad in (torch.zeros(4, 5), torch.zeros(2, 4, 5, dtype=torch.complex64),
                torch.full((4, 5), float("nan"), dtype=torch.complex64)):
        with pytest.raises(InputError):
            enh(score, sde, bad)
    with pytest.raises(InputError, match="unknown enhancer"):
        ENHANCERS.build("nope")
    with pytest.raises(InputError):
        ENHANCERS.build("udiffse", n_samples=0)
    with pytest.raises(InputError):
        ENHANCERS.build("udiffse_plus", n_em=3)  # UDiffSE+ has no EM loop
    assert {"udiffse", "udiffse_plus"} <= set(ENHANCERS.names())
    d = ENHANCERS.get("udiffse").DEFAULTS
    assert (d["n_em"], d["n_steps"], d["lam"], d["lik_period"], d["n_samples"]) == (5, 30, 1.5, 2, 4)
    assert "n_em" not in ENHANCERS.get("udiffse_plus").DEFAULTS


def test_tweedie_m_step_uses_predictor_score():
    """UDiffSE+ hook: the M-step sees (x_prev + sigma^2 score) / mu, then the step uses
    the updated variance; nothing happens off-period."""
    g = torch.Generator().manual_seed(0)
    X = _cn((6, 5), g)
    seen = []

    class Spy(FixedVarianceNoise):
        def m_step(self, X, S0):
            seen.append(S0)
            self.var = torch.full((6, 5), 0.3)

    obs = Spy(1.0)
    hook = LikelihoodHook(obs, X, lam=1.5, period=2, m_step_from_tweedie=True)
    x_prev, score, x = _cn((2, 6, 5), g), _cn((2, 6, 5), g), _cn((2, 6, 5), g)
    st = StepState(i=0, n_steps=30, t=0.5, t_next=0.45, dt=0.05, mu=0.5, sigma=0.2, g=0.7,
                   x=x, x_prev=x_prev, score=score)
    assert hook(st) is None and not seen
    st.i = 1
    out = hook(st)
    torch.testing.assert_close(seen[0], (x_prev + 0.04 * score) / 0.5)
    ref = FixedVarianceNoise(torch.full((6, 5), 0.3)).step(x, X, 0.5, 0.2, 0.7, 0.05, 1.5)
    torch.testing.assert_close(out, ref)
    assert hook.n_mstep == 1 and hook.n_lik == 1


def test_nmf_noise_m_step_fits_residual_power():
    g = torch.Generator().manual_seed(0)
    F, T = 64, 40
    noise_var = torch.linspace(0.05, 0.005, F)[:, None] * (1 + torch.rand(1, T, generator=g))
    X = noise_var.sqrt() * _cn((F, T), g)
    S = torch.zeros(4, F, T, dtype=torch.complex64)    # residual = X: V_m = |X|^2
    obs = GaussianNMFNoise(NMF.random(F, T, 4, generator=g, target_power=float(X.abs().pow(2).mean())))
    d = [obs.divergence(X, S)]
    for _ in range(20):
        d.append(float(obs.m_step(X, S)))
    assert all(b <= a * (1 + 1e-5) for a, b in zip(d, d[1:])) and d[-1] < d[0]
    assert torch.allclose(obs.nmf.W.sum(0), torch.ones(4))
