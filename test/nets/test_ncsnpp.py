"""NCSN++ backbone: presets, shapes, time dependence, gradients, registry, rebuild."""
import pytest
import torch

from avse.errors import InputError
from avse.nets import MODELS, PRESETS, NCSNpp
from avse.nets.layers import FirDown, FirUp


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return NCSNpp("tiny").eval()


@pytest.mark.parametrize("T", [32, 64])
def test_shapes_for_several_lengths(tiny, T):
    x = torch.randn(2, 2, 256, T)
    with torch.no_grad():
        y = tiny(x, torch.rand(2))
    assert y.shape == (2, 2, 256, T) and torch.isfinite(y).all()


def test_lengths_not_a_multiple_are_rejected(tiny):
    assert tiny.multiple == 32 and tiny.freq_multiple == 32
    with pytest.raises(InputError, match="T=20 of 32"):
        tiny(torch.randn(1, 2, 256, 20), torch.rand(1))
    with pytest.raises(InputError, match="input channels"):
        tiny(torch.randn(1, 4, 256, 32), torch.rand(1))


def test_preset_parameter_counts():
    assert 1_000_000 <= n_params(NCSNpp("tiny")) <= 3_000_000
    assert abs(n_params(NCSNpp("ncsnpp_28m")) / 28e6 - 1) < 0.05
    assert abs(n_params(NCSNpp("ncsnpp_65m")) / 65e6 - 1) < 0.05


def test_65m_has_attention_at_16_and_28m_has_none():
    big, mid = NCSNpp("ncsnpp_65m"), NCSNpp("ncsnpp_28m")
    n_attn = lambda m: sum(type(x).__name__ == "AttnBlock" for x in m.modules())  # noqa: E731
    # level 4 (256 / 2**4 = 16): 2 encoder blocks + 1 decoder block, plus the bottleneck
    assert n_attn(big) == 4 and n_attn(mid) == 0
    assert big.multiple == 64 and mid.multiple == 8


def test_output_depends_on_t(tiny):
    x = torch.randn(1, 2, 256, 32)
    with torch.no_grad():
        a = tiny(x, torch.tensor([0.1]))
        b = tiny(x, torch.tensor([0.9]))
        c = tiny(x, torch.tensor([0.1]))
    assert torch.equal(a, c)
    assert (a - b).abs().mean() > 1e-3 * a.abs().mean()


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    m = NCSNpp("tiny", nf=8, cond_dim=5, dropout=0.1)
    x = torch.randn(2, 2, 256, 64)
    cond = torch.randn(2, 16, 5)
    m(x, torch.rand(2), cond=cond).square().mean().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_conditioning_off_costs_nothing():
    base = NCSNpp("tiny")
    for off in (None, 0):
        m = NCSNpp("tiny", cond_dim=off)
        assert [n for n, _ in m.named_parameters()] == [n for n, _ in base.named_parameters()]
        assert m.fusions is None
    with pytest.raises(InputError, match="cond_dim"):
        base(torch.randn(1, 2, 256, 32), torch.rand(1), cond=torch.randn(1, 2, 4))
    on = NCSNpp("tiny", cond_dim=4)
    L = len(on.config["ch_mult"])
    assert len(on.fusions) == 2 * L + 1  # first conv, L-1 downs, bottleneck, L decoder levels
    assert n_params(on) > n_params(base)


def test_registry_presets_overrides_and_rebuild():
    m = MODELS.build("ncsnpp", preset="tiny", nf=8)
    assert m.config["nf"] == 8 and m.config["ch_mult"] == PRESETS["tiny"]["ch_mult"]
    again = NCSNpp(**m.config)
    again.load_state_dict(m.state_dict(), strict=True)
    x, t = torch.randn(1, 2, 256, 32), torch.rand(1)
    with torch.no_grad():
        assert torch.equal(m(x, t), again(x, t))
    with pytest.raises(InputError, match="unknown ncsnpp preset"):
        NCSNpp("huge")
    with pytest.raises(InputError, match="unknown option"):
        MODELS.build("ncsnpp", preset="tiny", nff=3)


def test_fir_resampling_keeps_constants_in_the_interior():
    x = torch.ones(1, 3, 16, 16)
    d, u = FirDown()(x), FirUp()(x)
    assert d.shape == (1, 3, 8, 8) and u.shape == (1, 3, 32, 32)
    torch.testing.assert_close(d[..., 1:-1, 1:-1], torch.ones_like(d[..., 1:-1, 1:-1]))
    torch.testing.assert_close(u[..., 2:-2, 2:-2], torch.ones_like(u[..., 2:-2, 2:-2]))


def test_patches_are_a_lossless_rearrangement():
    m = NCSNpp(nf=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(), mid_attn=False,
               patch=(4, 2))
    assert m.multiple == 2 * 2 and m.freq_multiple == 4 * 2
    assert m.conv_in.in_channels == 2 * 4 * 2
    x = torch.randn(2, 2, 256, 12)
    p = m._to_patches(x)
    assert p.shape == (2, 16, 64, 6)
    torch.testing.assert_close(m._from_patches(p), x, rtol=0, atol=0)
    # a patch holds a 4 x 2 TF block of one channel
    torch.testing.assert_close(p[0, :8, 0, 0].reshape(4, 2), x[0, 0, :4, :2], rtol=0, atol=0)
    with torch.no_grad():
        assert m(x, torch.rand(2)).shape == x.shape
    with pytest.raises(InputError, match="T=6 of 4"):
        m(torch.randn(1, 2, 256, 6), torch.rand(1))
    with pytest.raises(InputError, match="patch"):
        NCSNpp("tiny", patch=(0, 2))
