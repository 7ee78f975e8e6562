"""Itakura-Saito NMF multiplicative updates (Fevotte et al. 2009; Fevotte & Idier 2011)."""
import math

import pytest
import torch

from avse.enhance.nmf import NMF, init_nmf, is_divergence, normalise, update_H, update_W


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _random_problem(g, dtype):
    """V_m drawn from the IS-NMF generative model: a random low-rank power times the mean
    of b exponential variables (as |X - S|^2 averaged over b samples), random scale."""
    F, T = (int(v) for v in torch.randint(2, 60, (2,), generator=g))
    K, K0, b = (int(v) for v in torch.randint(1, 8, (3,), generator=g))
    W0, H0 = init_nmf(F, T, K0, generator=g, dtype=dtype)
    u = torch.rand((b, F, T), generator=g, dtype=dtype).clamp_min(1e-12)
    scale = 10 ** float(torch.rand(1, generator=g) * 6 - 3)
    Vm = (W0 @ H0) * (-torch.log(u)).mean(0) * scale
    tp = float(Vm.mean()) * 10 ** float(torch.rand(1, generator=g) * 2 - 1)
    return Vm, init_nmf(F, T, K, generator=g, dtype=dtype, target_power=tp)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
@pytest.mark.parametrize("gamma", [1.0, 0.5])
def test_updates_never_increase_divergence(dtype, tol, gamma):
    g = torch.Generator().manual_seed(7)
    for _ in range(60):
        Vm, (W, H) = _random_problem(g, dtype)
        d0 = d = float(is_divergence(Vm, W @ H))
        for _ in range(15):
            W, H = update_W(Vm, W, H, gamma)
            d1 = float(is_divergence(Vm, W @ H))
            assert d1 <= d + tol * abs(d), (d, d1)
            H = update_H(Vm, W, H, gamma)
            d2 = float(is_divergence(Vm, W @ H))
            assert d2 <= d1 + tol * abs(d1), (d1, d2)
            d = d2
        assert d < d0


def test_normalisation_and_floor():
    g = torch.Generator().manual_seed(0)
    W, H = init_nmf(30, 20, 4, generator=g)
    assert torch.allclose(W.sum(0), torch.ones(4)) and (W > 0).all() and (H > 0).all()
    W2, H2 = normalise(3.0 * W, H)
    torch.testing.assert_close(W2 @ H2, 3.0 * W @ H)
    Vm = torch.zeros(30, 20)  # silent residual: floored, stays finite and positive
    for _ in range(5):
        W, H = update_W(Vm, W, H)
        H = update_H(Vm, W, H)
        assert torch.allclose(W.sum(0), torch.ones(4))
    assert torch.isfinite(W @ H).all() and (H >= 1e-10).all() and (W > 0).all()


def test_fit_recovers_low_rank_power():
    g = torch.Generator().manual_seed(1)
    W0, H0 = init_nmf(40, 50, 3, generator=g, dtype=torch.float64)
    Vm = W0 @ H0
    nmf = NMF.random(40, 50, 3, generator=g, dtype=torch.float64, target_power=float(Vm.mean()))
    d0 = float(is_divergence(Vm, nmf.variance()))
    d = float(nmf.update(Vm, n_iter=500))
    assert d < 1e-3 * d0 and d / Vm.numel() < 1e-3  # mean per-bin divergence


def test_batched_equals_loop_and_init_is_seeded():
    g = torch.Generator().manual_seed(2)
    Vm = torch.rand(3, 16, 12, generator=g, dtype=torch.float64) + 0.01
    W, H = init_nmf(16, 12, 4, generator=torch.Generator().manual_seed(9), batch_shape=(3,),
                    dtype=torch.float64)
    W2, H2 = init_nmf(16, 12, 4, generator=torch.Generator().manual_seed(9), batch_shape=(3,),
                      dtype=torch.float64)
    assert torch.equal(W, W2) and torch.equal(H, H2)
    Wb, Hb = update_W(Vm, W, H)
    Hb = update_H(Vm, Wb, Hb)
    for i in range(3):
        Wi, Hi = update_W(Vm[i], W[i], H[i])
        Hi = update_H(Vm[i], Wi, Hi)
        torch.testing.assert_close(Wb[i], Wi)
        torch.testing.assert_close(Hb[i], Hi)
    assert is_divergence(Vm, Wb @ Hb).shape == (3,)


def test_divergence_values():
    V = torch.rand(5, 6) + 0.1
    assert float(is_divergence(V, V)) == pytest.approx(0.0, abs=1e-5)
    # d(x | y) = x/y - log(x/y) - 1 with x/y = 2 everywhere
    expected = 30 * (2 - math.log(2) - 1)
    assert float(is_divergence(2 * V, V)) == pytest.approx(expected, rel=1e-5)


def test_clip_keeps_outliers_out_of_the_fit():
    """Noise power with loud 'speech' (200 x the noise) in 15 % of the bins of a third of
    the frames: the plain IS-NMF inflates those frames' activation about 100-fold, the
    clipped one (residual capped at 3 x the model variance) less than 2-fold (its fixed
    point: 0.85 x 0.95 + 0.15 x 3 = 1.26 times its own value, i.e. 1.5)."""
    g = torch.Generator().manual_seed(3)
    F, T = 128, 60
    w = torch.linspace(1.0, 0.1, F)[:, None]
    w = w / w.sum()
    gain = (1.0 + 9.0 * (torch.arange(T) % 20 < 6).float())[None]
    noise = w * gain * torch.empty(F, T, dtype=torch.float32).exponential_(generator=g)
    speech = torch.zeros(F, T)
    loud = torch.arange(T) % 3 == 0
    speech[torch.arange(0, F, 7)[:, None], torch.nonzero(loud)[:, 0]] = 200.0 * float(noise.mean())
    errs = {}
    for clip in (None, 3.0):
        nmf = NMF(w.clone(), torch.full((1, T), float(noise.mean()) * F), clip=clip)
        for _ in range(40):
            nmf.H = update_H(nmf.target(noise + speech), nmf.W, nmf.H)
        errs[clip] = float((nmf.H[0] / gain[0])[loud].mean())
    assert errs[None] > 20.0 and 1.0 < errs[3.0] < 2.0
    torch.testing.assert_close(NMF(w, gain).target(speech), speech)   # no clip: unchanged
    with pytest.raises(ValueError, match="clip"):
        NMF(w, gain, clip=1.0)
