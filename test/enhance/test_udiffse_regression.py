"""Regression: UDiffSE / UDiffSE+ outputs at a fixed seed are unchanged by the refactoring
onto the common observation-operator interface (avse.enhance.operators / guidance).

The reference numbers were produced by the implementation *before* the refactor (the
UDiffSE family of issue A2) on the seeded toy problem below; a change of the sampler,
the likelihood step, the NMF M-step or the random stream order changes them.
"""
import pytest
import torch

from avse.diffusion.sde import OUVE
from avse.enhance import ENHANCERS

# name, method_conf, (sum |S|, sum Re S, sum Im S, S[3, 5], IS divergence of the last M-step)
REFERENCE = [
    ("udiffse", dict(n_steps=8, n_em=3, n_samples=2),
     (158.85609436035156, -12.682369232177734, -9.75264835357666,
      complex(0.3514338731765747, -0.5991469025611877), 106.62979125976562)),
    ("udiffse_plus", dict(n_steps=10, n_samples=3, lik_period=1),
     (187.42384338378906, -7.643218040466309, -15.881083488464355,
      complex(0.3665750026702881, -0.8822691440582275), 88.74037170410156)),
]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _problem():
    g = torch.Generator().manual_seed(1234)
    F, T = 16, 24
    X = torch.randn(F, T, dtype=torch.complex64, generator=g) * 0.7
    mean = torch.randn(F, T, dtype=torch.complex64, generator=g) * 0.1
    var = 0.05 + 0.5 * torch.rand(F, T, generator=g)
    return X, mean, var


def _score_fn(sde, mean, var):
    """A Gaussian score plus a small nonlinear term (so the check is not of a linear map)."""
    def s(x, t):
        mu, sig = sde.marginal(t)
        mu, sig = mu.reshape(-1, 1, 1), sig.reshape(-1, 1, 1)
        base = -(x - mu * mean) / (mu ** 2 * var + sig ** 2)
        return base + 0.1 * torch.tanh(x.real) - 0.05j * torch.tanh(x.imag)
    return s


@pytest.mark.parametrize("name,conf,ref", REFERENCE)
def test_udiffse_family_unchanged_at_fixed_seed(name, conf, ref):
    sde = OUVE()
    X, mean, var = _problem()
    enh = ENHANCERS.build(name, **conf)
    S = enh(_score_fn(sde, mean, var), sde, X, generator=torch.Generator().manual_seed(7))
    got = (S.abs().sum().item(), S.real.sum().item(), S.imag.sum().item(), S[3, 5].item(),
           enh.last_stats["is_divergence"])
    for g, r in zip(got, ref):
        assert abs(g - r) <= 1e-4 * max(1.0, abs(r)), (name, got, ref)


def test_udiffse_plus_is_the_identity_instance_of_the_general_enhancer():
    """PosteriorEnhancer with A = I (compressed domain), NMF noise and the closed-form
    guidance reproduces UDiffSE+ exactly (same random stream, same steps)."""
    from avse.enhance.measurement import Measurement
    from avse.enhance.posterior import PosteriorEnhancer

    class Plain(PosteriorEnhancer):
        needs = ()

        def _measurement(self, Xn, **aux):
            return Measurement()

    sde = OUVE()
    X, mean, var = _problem()
    conf = dict(n_steps=10, n_samples=3, lik_period=1)
    ref = ENHANCERS.build("udiffse_plus", **conf)(_score_fn(sde, mean, var), sde, X,
                                                  generator=torch.Generator().manual_seed(7))
    gen = Plain(guidance="udiffse", noise="nmf", **conf)
    got = gen(_score_fn(sde, mean, var), sde, X, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert gen.last_stats["m_steps"] == 10 and gen.last_stats["lik_steps"] == 10
