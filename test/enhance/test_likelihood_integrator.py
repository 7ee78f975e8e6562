"""The exponential likelihood integrator: exact for the linear flow, no overshoot."""
import pytest
import torch

from avse.enhance.likelihood import FixedVarianceNoise, LikelihoodHook
from avse.errors import InputError


def _case(var=1e-4, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(16, 12, dtype=torch.complex64, generator=g)
    S = torch.randn(3, 16, 12, dtype=torch.complex64, generator=g)
    V = (torch.rand(16, 12, generator=g) * var + var / 10)
    return X, S, FixedVarianceNoise(V)


@pytest.mark.parametrize("coef", [1e-6, 0.01, 0.5])
def test_exp_step_is_the_exact_solution_of_the_linear_flow(coef):
    X, S, obs = _case()
    mu, sigma = 0.9, 0.02
    one = obs.step(S, X, mu, sigma, g=1.0, dt=coef, lam=1.0, integrator="exp")
    # many small Euler steps of the same flow converge to it
    many = S.clone()
    n = 4000
    for _ in range(n):
        many = obs.step(many, X, mu, sigma, g=1.0, dt=coef / n, lam=1.0, integrator="euler")
    assert torch.allclose(one, many, rtol=2e-3, atol=2e-4)
    # closed form: the residual of S / mu decays by exp(-r) per bin
    r = coef / (mu ** 2 * ((sigma / mu) ** 2 + obs.variance()))
    expect = X - (X - S / mu) * torch.exp(-r)
    assert torch.allclose(one / mu, expect, rtol=1e-4, atol=1e-5)


def test_euler_overshoots_where_exp_does_not():
    X, S, obs = _case(var=1e-6)
    mu, sigma = 0.95, 0.02
    coef = 0.01  # r = coef / (mu^2 (sigma/mu)^2 + ...) ~ 25: a stiff last step
    before = (X - S / mu).abs()
    euler = obs.step(S, X, mu, sigma, 1.0, coef, 1.0, "euler")
    exp = obs.step(S, X, mu, sigma, 1.0, coef, 1.0, "exp")
    assert ((X - euler / mu).abs() > 5 * before).float().mean() > 0.9   # blows up
    assert ((X - exp / mu).abs() <= before + 1e-6).all()                 # contracts
    # small coefficients: the two agree to first order
    a = obs.step(S, X, mu, sigma, 1.0, 1e-9, 1.0, "euler")
    b = obs.step(S, X, mu, sigma, 1.0, 1e-9, 1.0, "exp")
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_unknown_integrator_is_an_error():
    X, S, obs = _case()
    with pytest.raises(InputError, match="integrator"):
        LikelihoodHook(obs, X, integrator="rk4")
    with pytest.raises(InputError, match="integrator"):
        obs.step(S, X, 0.9, 0.1, 1.0, 0.1, 1.0, "rk4")
