"""Predictor-corrector sampler (Song et al. 2021) checked on Gaussian data with a
closed-form score: x0 ~ CN(m, s^2) per bin -> x_t ~ CN(mu_t m, mu_t^2 s^2 + sigma_t^2)."""

import pytest
import torch

from avse.diffusion.sampler import PCSampler, StepState, gaussian_score, sample
from avse.diffusion.sde import OUVE


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _problem(seed=0, F=8, T=4):
    g = torch.Generator().manual_seed(seed)
    m = 0.5 * torch.randn(F, T, dtype=torch.complex64, generator=g)
    var = 0.3 * torch.rand(F, T, generator=g) + 0.02
    return g, m, var


def _marginal_draw(sde, m, var, t, B, g):
    mu, sig = sde.marginal(torch.tensor(t))
    z = torch.randn((B,) + tuple(m.shape), dtype=torch.complex64, generator=g)
    return mu * m + torch.sqrt(mu ** 2 * var + sig ** 2) * z


def test_time_grid_and_network_calls():
    sde = OUVE()
    calls = []

    def score(x, t):
        calls.append(t.clone())
        assert t.shape == (x.shape[0],) and t.dtype == torch.float32
        return torch.zeros_like(x)

    for nc in (0, 1, 3):
        calls.clear()
        s = PCSampler(sde, n_steps=30, n_corrector=nc)
        x = s.sample(score, (2, 5, 7), generator=torch.Generator().manual_seed(0))
        assert x.shape == (2, 5, 7) and x.dtype == torch.complex64
        assert s.nfe == len(calls) == 30 * (1 + nc)
    times = PCSampler(sde, n_steps=30).times()
    assert times[0][0] == pytest.approx(1.0) and times[-1] == pytest.approx((0.03, 0.03))
    assert sum(dt for _, dt in times) == pytest.approx(1.0)
    assert all(dt == pytest.approx(0.97 / 29, rel=1e-5) for _, dt in times[:-1])
    st = {}
    sample(score, sde, (1, 2, 2), n_steps=10, stats=st)
    assert st["nfe"] == 20
    with pytest.raises(ValueError):
        PCSampler(sde, n_steps=1)


def test_gaussian_score_is_gradient_of_log_density():
    """Complex score convention: s = d log p / d conj(x) = (autograd grad) / 2."""
    sde = OUVE()
    g, m, var = _problem()
    t = torch.full((3,), 0.4)
    x = _marginal_draw(sde, m, var, 0.4, 3, g).requires_grad_(True)
    mu, sig = sde.marginal(torch.tensor(0.4))
    logp = -((x - mu * m).abs() ** 2 / (mu ** 2 * var + sig ** 2)).sum()
    logp.backward()
    s = gaussian_score(m, var, sde)(x.detach(), t)
    torch.testing.assert_close(s, x.grad / 2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_steps,n_corrector", [(30, 1), (100, 0)])
def test_unconditional_sampler_reproduces_gaussian_data(n_steps, n_corrector):
    sde = OUVE()
    g, m, var = _problem()
    B = 8000
    x = sample(gaussian_score(m, var, sde), sde, _marginal_draw(sde, m, var, 1.0, B, g),
               n_steps=n_steps, n_corrector=n_corrector, generator=g)
    mean = x.mean(0)
    ratio = (x - mean).abs().pow(2).mean(0) / var
    # Sampling error of the mean: std sqrt(var / B) ~ 0.011 sd; allow discretisation bias.
    assert float(((mean - m).abs() / var.sqrt()).max()) < 0.1
    # Variance: relative sampling error 1/sqrt(B) ~ 1.1 % per bin; residual noise
    # sigma(t_eps)^2 ~ 3.5e-4 (mostly removed by the final noise-free step) and the
    # Euler-Maruyama bias of a few percent.
    assert 0.95 < float(ratio.mean()) < 1.05
    assert 0.88 < float(ratio.min()) and float(ratio.max()) < 1.12


def test_prior_start_zero_mean_data():
    """From the SDE's own prior (zero-mean data, the speech case) with default settings."""
    sde = OUVE()
    g, _, var = _problem(seed=1)
    x = sample(gaussian_score(torch.zeros(()), var, sde), sde, (6000,) + tuple(var.shape),
               generator=g)
    ratio = x.abs().pow(2).mean(0) / var
    assert float((x.mean(0).abs() / var.sqrt()).max()) < 0.1
    assert 0.93 < float(ratio.mean()) < 1.07


def test_hooks_see_tweedie_and_replace_sample():
    sde = OUVE()
    g, m, var = _problem()
    seen = []

    def check(state: StepState):
        # Tweedie from the predictor's score equals the exact posterior mean E[x0 | x_t].
        mu, sig = state.mu, state.sigma
        exact = m + mu * var / (mu ** 2 * var + sig ** 2) * (state.x_prev - mu * m)
        torch.testing.assert_close(state.x0_hat, exact, rtol=1e-4, atol=1e-5)
        assert state.dt == pytest.approx(state.t - state.t_next)
        seen.append(state.i)
        return None

    def zero_last(state):
        return torch.zeros_like(state.x) if state.last else None

    x = sample(gaussian_score(m, var, sde), sde, (4,) + tuple(m.shape), n_steps=12,
               generator=g, hooks=[check, zero_last])
    assert seen == list(range(12)) and float(x.abs().max()) == 0.0


def test_deterministic_for_a_generator():
    sde = OUVE()
    _, m, var = _problem()
    run = lambda seed: sample(gaussian_score(m, var, sde), sde, (3, 8, 4), n_steps=10,
                              generator=torch.Generator().manual_seed(seed))
    assert torch.equal(run(5), run(5)) and not torch.equal(run(5), run(6))


def test_corrector_step_size_is_r_sigma_squared():
    """eps = (r sigma)^2 (SGMSE+/UDiffSE): with |s| ~ |z| / sigma the step/noise norm
    ratio is r / sqrt(2)."""
    sde = OUVE()
    g = torch.Generator().manual_seed(3)
    sigma = 0.2
    x = sigma * torch.randn(20000, dtype=torch.complex64, generator=g)[None]
    for r in (0.16, 0.5):
        s = PCSampler(sde, snr=r)
        _, step, noise = s.corrector_step(lambda x, t: -x / sigma ** 2, x, torch.zeros(1), sigma,
                                          g, return_parts=True)
        assert float(step.norm() / noise.norm()) == pytest.approx(r / 2 ** 0.5, rel=0.03)


def test_last_step_adds_no_noise():
    """Near-deterministic data (var 1e-7): the output keeps far less than the
    sigma(t_eps)^2 ~ 3.5e-4 of residual noise a noisy last step would leave."""
    sde = OUVE()
    g, m, _ = _problem()
    var = torch.full(m.shape, 1e-7)
    x = sample(gaussian_score(m, var, sde), sde, _marginal_draw(sde, m, var, 1.0, 2000, g),
               generator=g)
    _, sig_eps = sde.marginal(torch.tensor(sde.t_eps))
    resid = float((x - m).abs().pow(2).mean())
    assert resid < 0.1 * float(sig_eps) ** 2


def test_grad_mode_lets_hooks_differentiate_tweedie():
    """grad=True (for DPS): d|x0_hat - c|^2 / d conj(x_prev) = J (x0_hat - c) with the
    Gaussian Tweedie Jacobian J = mu s^2 / (mu^2 s^2 + sigma^2); autograd gives twice it."""
    sde = OUVE()
    g, m, var = _problem()
    c = torch.zeros_like(m)
    checked = []

    def dps(state: StepState):
        loss = (state.x0_hat - c).abs().pow(2).sum()
        (grad,) = torch.autograd.grad(loss, state.x_prev)
        mu, sig = state.mu, state.sigma
        J = mu * var / (mu ** 2 * var + sig ** 2)
        torch.testing.assert_close(grad / 2, J * (state.x0_hat.detach() - c), rtol=1e-3,
                                   atol=1e-5)
        checked.append(state.i)
        return state.x - 0.0 * grad

    x = sample(gaussian_score(m, var, sde), sde, (2, 8, 4), n_steps=5, generator=g,
               hooks=[dps], grad=True)
    assert checked == list(range(5)) and not x.requires_grad

    def no_graph(state):
        assert not state.score.requires_grad and not state.x.requires_grad

    sample(gaussian_score(m, var, sde), sde, (2, 8, 4), n_steps=3, hooks=[no_graph])


def test_a_pass_from_t_start_spans_t_start_to_zero():
    """SDEdit start: the n steps go from t_start down to t_eps (then 0); a shape cannot start
    such a pass (it needs the noised estimate), and t_start must lie in (t_eps, T]."""
    sde = OUVE()
    s = PCSampler(sde, n_steps=5, t_start=0.3)
    times = s.times()
    assert len(times) == 5 and times[0][0] == pytest.approx(0.3) and times[-1] == pytest.approx((0.03, 0.03))
    assert sum(dt for _, dt in times) == pytest.approx(0.3)
    seen = []
    x0 = torch.ones(1, 2, 2, dtype=torch.complex64)
    s.sample(lambda x, t: seen.append(float(t[0])) or torch.zeros_like(x), x0)
    assert seen[0] == pytest.approx(0.3) and s.nfe == 10
    assert PCSampler(sde, n_steps=5, t_start=1.0).times() == PCSampler(sde, n_steps=5).times()
    with pytest.raises(ValueError, match="given x_"):
        s.sample(lambda x, t: torch.zeros_like(x), (1, 2, 2))
    for bad in (0.03, 0.01, 1.5):
        with pytest.raises(ValueError, match="t_eps < start <= T"):
            PCSampler(sde, n_steps=5, t_start=bad)
