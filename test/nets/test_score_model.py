"""ScoreModel: complex I/O, output convention, extra inputs, config round trip."""
import json

import pytest
import torch

from avse.diffusion.sde import OUVE
from avse.errors import InputError
from avse.nets import ScoreModel

CONF = {"preset": "tiny", "nf": 8}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ScoreModel.from_config("ncsnpp", CONF, OUVE()).eval()


def test_complex_in_complex_out_with_auto_padding(model):
    x = torch.randn(2, 256, 13, dtype=torch.complex64)  # 13 frames: padded to 16 inside
    t = torch.tensor([0.2, 0.7])
    with torch.no_grad():
        s = model(x, t)
        o = model.raw(x, t)
    assert s.shape == x.shape and s.dtype == torch.complex64
    sigma = OUVE().marginal(t)[1]
    torch.testing.assert_close(s, o / sigma[:, None, None])
    torch.testing.assert_close(model.sigma_fn(t), sigma)
    with torch.no_grad():  # a scalar t is broadcast
        torch.testing.assert_close(model(x[:1], 0.2), s[:1], rtol=1e-3, atol=1e-3)
    with pytest.raises(InputError):
        model(torch.randn(2, 256, 8), t)


def test_extra_complex_channels():
    m = ScoreModel.from_config("ncsnpp", {**CONF, "x_extra": 1}, OUVE())
    assert m.backbone.config["in_channels"] == 4 and m.config["model_conf"]["x_extra"] == 1
    x = torch.randn(1, 256, 8, dtype=torch.complex64)
    y = torch.randn(1, 256, 8, dtype=torch.complex64)
    with torch.no_grad():
        a, b = m(x, 0.5, x_extra=y), m(x, 0.5, x_extra=2 * y)
    assert a.shape == x.shape and not torch.allclose(a, b)
    with pytest.raises(InputError, match="x_extra"):
        m(x, 0.5)
    with pytest.raises(InputError, match="contradicts"):
        ScoreModel.from_config("ncsnpp", {**CONF, "x_extra": 1, "in_channels": 2}, OUVE())


def test_conditioning_passes_through():
    m = ScoreModel.from_config("ncsnpp", {**CONF, "cond_dim": 3}, OUVE())
    x = torch.randn(1, 256, 8, dtype=torch.complex64)
    with torch.no_grad():
        s = m(x, 0.5, cond=torch.randn(1, 2, 3), cond_mask=torch.ones(1, 2, dtype=torch.bool))
    assert s.shape == x.shape


def test_config_round_trip_rebuilds_the_same_network(model):
    stored = json.loads(json.dumps(model.config))  # as a checkpoint/YAML would keep it
    assert stored["model"] == "ncsnpp" and "preset" not in stored["model_conf"]
    again = ScoreModel.from_stored(stored, OUVE(t_eps=0.01))  # t_eps does not matter
    again.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 256, 8, dtype=torch.complex64)
    with torch.no_grad():
        torch.testing.assert_close(again(x, 0.3), model(x, 0.3))


def test_incompatible_checkpoints_are_rejected(model):
    other = ScoreModel.from_config("ncsnpp", {"preset": "tiny", "nf": 16}, OUVE())
    with pytest.raises(InputError, match="model_conf.nf: checkpoint 16 vs model 8"):
        model.check_compatible(other.config)
    with pytest.raises(InputError, match="sde.sigma_max"):
        model.check_compatible(ScoreModel.from_config("ncsnpp", CONF, OUVE(sigma_max=0.6)).config)
    with pytest.raises(InputError, match="not a ScoreModel checkpoint"):
        ScoreModel.from_stored({"foo": 1}, OUVE())
    model.check_compatible(model.config)


def test_tweedie_estimate(model):
    x = torch.randn(2, 256, 8, dtype=torch.complex64)
    t = torch.tensor([0.3, 0.8])
    with torch.no_grad():
        x0, s = model.x0_estimate(x, t)
        torch.testing.assert_close(s, model(x, t))
    mu, sigma = OUVE().marginal(t)
    torch.testing.assert_close(x0, (x + sigma[:, None, None] ** 2 * s) / mu[:, None, None])


def test_gaussian_precond_is_exact_for_gaussian_data_when_the_residual_is_zero():
    """With a zero backbone output, the score is that of CN(0, sigma_d^2) data."""
    sde = OUVE()
    m = ScoreModel.from_config("ncsnpp", {**CONF, "sigma_data": 0.2}, sde).eval()
    assert m.config["model_conf"]["precond"] == "gaussian"
    for p in m.backbone.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(2, 256, 8, dtype=torch.complex64)
    t = torch.tensor([0.1, 0.9])
    mu, sigma = sde.marginal(t)
    expected = -x / (mu ** 2 * 0.04 + sigma ** 2)[:, None, None]
    with torch.no_grad():
        torch.testing.assert_close(m(x, t), expected, rtol=1e-5, atol=1e-5)
    plain = ScoreModel.from_config("ncsnpp", {**CONF, "precond": "none"}, sde)
    for p in plain.backbone.parameters():
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        assert plain(x, t).abs().max() == 0
    with pytest.raises(InputError, match="precond"):
        ScoreModel.from_config("ncsnpp", {**CONF, "precond": "edm"}, sde)


def test_checkpoint_with_other_precond_is_rejected(model):
    other = ScoreModel.from_config("ncsnpp", {**CONF, "precond": "none"}, OUVE())
    with pytest.raises(InputError, match="precond"):
        model.check_compatible(other.config)
