"""VAE priors (avse.nets.vae): shapes, the ELBO terms, conditioning paths."""
import pytest
import torch

from avse.errors import InputError
from avse.nets.vae import VAES, SpeechVAE, is_divergence, kl_gaussians

pytestmark = pytest.mark.usefixtures("one_thread")
LIP = {"dim": 8, "front_channels": 4, "front_kernel": [3, 3, 3], "channels": [8], "input_pool": 4, "tcn_layers": 1,
       "size": 32}


def _x(B=2, F=33, T=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, F, T, dtype=torch.complex64, generator=g)


def _perturb(module, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("name", ["vae", "rvae"])
def test_shapes_and_loss_terms(name):
    m = SpeechVAE.from_config(name, {"n_freq": 33, "latent": 4, "hidden": 16})
    x = _x()
    power = x.abs() ** 2
    mu, lv = m.encode(power)
    assert mu.shape == lv.shape == (2, 4, 20)
    assert m.decode(mu).shape == (2, 33, 20)
    rec, kl = m(x, torch.randn(2, 4, 20))
    assert rec.ndim == kl.ndim == 0 and rec > 0 and kl >= 0
    assert m.config == {"model": name, "format": "vae", "model_conf": m.config["model_conf"]}
    assert SpeechVAE.from_config(name, m.config["model_conf"]).config == m.config


def test_divergences_are_zero_only_at_the_match():
    v = torch.full((3,), 2.0)
    assert torch.allclose(is_divergence(v, v.log()), torch.zeros(3), atol=1e-6)
    assert bool((is_divergence(v * 3, v.log()) > 0).all())
    z = torch.zeros(3)
    assert torch.allclose(kl_gaussians(z, z, z, z), z)
    assert bool((kl_gaussians(z + 1, z, z, z) > 0).all())


def test_data_init_sets_the_level():
    m = VAES.build("vae", n_freq=33, latent=4, hidden=16)
    p = (_x(4).abs() ** 2) * 100.0
    m.init_from_data(p)
    assert torch.allclose(m.dec_out.bias, torch.log(p).mean((0, 2)), atol=1e-4)
    assert abs(float(m.features(p).mean())) < 1e-3


def test_rvae_sees_neighbouring_frames_and_vae_does_not():
    for name, coupled in (("vae", False), ("rvae", True)):
        m = SpeechVAE.from_config(name, {"n_freq": 9, "latent": 3, "hidden": 8, **({"layers": 2} if coupled else {})})
        z = torch.randn(1, 3, 12)
        z2 = z.clone()
        z2[..., 6] += 1.0
        with torch.no_grad():
            d = (m.decode(z) - m.decode(z2)).abs().sum(1)[0]
        assert (float(d[5]) > 0) == coupled and float(d[6]) > 0


@pytest.mark.parametrize("fusion", ["concat", "xattn", "gated_xattn"])
def test_av_conditioning_starts_neutral_and_then_changes_the_output(fusion):
    m = SpeechVAE.from_config("vae", {"n_freq": 17, "latent": 3, "hidden": 16, "lip_encoder": "resnet_tcn",
                                       "lip_encoder_conf": LIP, "fusion": fusion, "spec_fps": 62.5})
    assert m.audio_visual
    T, Tc = 25, 10
    lips = torch.randint(0, 255, (1, Tc, 32, 32), dtype=torch.uint8)
    mask, rel = torch.ones(1, Tc, dtype=torch.bool), torch.ones(1, Tc)
    z = torch.randn(1, 3, T)
    with torch.no_grad():
        vis = m.visual(lips, mask, rel)
        none = {"cond": vis["cond"], "cond_mask": torch.zeros_like(mask), "cond_rel": vis["cond_rel"]}
        # at initialisation the visual paths add nothing and the prior is N(0, I)
        assert torch.allclose(m.decode(z, vis), m.decode(z, none), atol=1e-6)
        mu_p, lv_p = m.prior(T, vis)
        assert float(mu_p.abs().max()) == 0.0 and float(lv_p.abs().max()) == 0.0
        _perturb(m.dec_fusion)
        _perturb(m.prior_net)
        assert not torch.allclose(m.decode(z, vis), m.decode(z, none), atol=1e-4)
        assert float(m.prior(T, vis)[0].abs().max()) > 0
        assert float(m.prior(T, none)[0].abs().max()) == 0.0   # no video: back to N(0, I)
        if fusion == "gated_xattn":  # reliability 0 gates the visual stream off
            off = dict(vis, cond_rel=torch.zeros(1, Tc))
            assert torch.allclose(m.decode(z, off), m.decode(z, none), atol=1e-6)
            assert float(m.prior(T, off)[0].abs().max()) == 0.0


def test_gradients_reach_the_visual_paths():
    m = SpeechVAE.from_config("rvae", {"n_freq": 17, "latent": 3, "hidden": 16, "lip_encoder": "resnet_tcn",
                                        "lip_encoder_conf": LIP, "fusion": "concat", "spec_fps": 62.5})
    lips = torch.randint(0, 255, (2, 10, 32, 32), dtype=torch.uint8)
    args = (_x(2, 17, 25), torch.randn(2, 3, 25), lips, torch.ones(2, 10, dtype=torch.bool), torch.ones(2, 10))

    def grads():
        m.zero_grad()
        sum(m(*args)).backward()
        return {n: sum(float(p.grad.abs().sum()) for p in part.parameters() if p.grad is not None)
                for n, part in (("enc", m.enc_fusion), ("dec", m.dec_fusion), ("prior", m.prior_net),
                                ("lips", m.cond_encoder))}

    g0 = grads()
    # the zero-initialised output layers of the visual paths get gradient at once ...
    assert g0["enc"] > 0 and g0["dec"] > 0 and g0["prior"] > 0 and g0["lips"] == 0.0
    torch.optim.SGD(m.parameters(), lr=0.1).step()
    assert grads()["lips"] > 0   # ... and pass it on to the lip encoder after one step


def test_bad_configs_are_refused():
    with pytest.raises(InputError, match="unknown VAE model"):
        SpeechVAE.from_config("vqvae", {"n_freq": 9})
    with pytest.raises(InputError, match="layers >= 1"):
        SpeechVAE.from_config("rvae", {"n_freq": 9, "layers": 0})
    with pytest.raises(InputError, match="bad configuration"):
        SpeechVAE.from_config("vae", {"n_freq": 9, "depth": 3})
    with pytest.raises(InputError, match="unknown fusion"):
        SpeechVAE.from_config("vae", {"n_freq": 9, "lip_encoder": "resnet_tcn", "lip_encoder_conf": LIP,
                                      "fusion": "sum"})
    m = SpeechVAE.from_config("vae", {"n_freq": 9})
    with pytest.raises(InputError, match="audio-only"):
        m.visual(torch.zeros(1, 3, 8))
