"""The embedding-conditioned noise model ``embed_nmf`` with a small untrained embedding model."""
import numpy as np
import pytest
import torch

from avse.corpus.synthetic.noise import NOISE_DESCRIPTIONS
from avse.corpus.synthetic.noise_text import corpus
from avse.diffusion.sampler import gaussian_score
from avse.diffusion.sde import OUVE
from avse.enhance import ENHANCERS
from avse.enhance.embed_noise import FixedBasisNMF
from avse.enhance.likelihood import GaussianNMFNoise
from avse.enhance.noise_choice import build_noise
from avse.enhance.noise_models import CompressedDomainNoise
from avse.errors import InputError
from avse.nets.noise_embed import NoiseEmbedModel
from avse.nets.noise_embedder import save_noise_embed
from avse.nets.noise_tokenizer import Tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def embed_model(tmp_path):
    torch.manual_seed(0)
    tok = Tokenizer.train(corpus(sorted(NOISE_DESCRIPTIONS), 20), 150)
    conf = dict(dim=8, vocab_size=tok.vocab_size, decoder_n_fft=30, decoder_rank=3, hidden=16)
    path = str(tmp_path / "embed.pt")
    save_noise_embed(path, NoiseEmbedModel(**conf), tok, conf, {"fs": 16000})
    return path


def _X(F=16, T=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(F, T, dtype=torch.complex64, generator=g) * 0.3


def test_bases_fixed_activations_updated(embed_model):
    noise = build_noise("embed_nmf", {"decoder": embed_model, "embed": "image", "domain": "compressed"})
    assert noise.needs == ("noise_embed_image.scp",) and noise.updates
    e = np.random.default_rng(0).standard_normal(8).astype(np.float32)
    obs = noise.observation(_X(), noise_embed_image=e)
    assert isinstance(obs, GaussianNMFNoise) and isinstance(obs.nmf, FixedBasisNMF)
    W0, H0 = obs.nmf.W.clone(), obs.nmf.H.clone()
    torch.testing.assert_close(W0.sum(0), torch.ones(3))
    obs.nmf.update(_X(seed=1).abs().pow(2), 3)
    assert torch.equal(obs.nmf.W, W0) and not torch.equal(obs.nmf.H, H0)
    lin = build_noise("embed_nmf", {"decoder": embed_model, "update_w": True, "init": "noisy"})
    obs = lin.observation(_X(), frontend=type("FE", (), {"alpha": 0.5})(), noise_embed_text=e)
    assert isinstance(obs, CompressedDomainNoise) and type(obs.nmf).__name__ == "NMF"


def test_errors(embed_model):
    with pytest.raises(InputError, match="decoder"):
        build_noise("embed_nmf", {})
    noise = build_noise("embed_nmf", {"decoder": embed_model, "domain": "compressed"})
    with pytest.raises(InputError, match="noise_embed_text"):
        noise.observation(_X())
    with pytest.raises(InputError, match="size 5"):
        noise.observation(_X(), noise_embed_text=np.zeros(5))
    with pytest.raises(InputError, match="frequencies"):
        noise.observation(_X(F=20), noise_embed_text=np.zeros(8))
    with pytest.raises(InputError, match="clip"):
        build_noise("embed_nmf", {"decoder": embed_model, "clip": 1.0})
    with pytest.raises(InputError, match="not found"):
        build_noise("embed_nmf", {"decoder": embed_model + ".missing", "domain": "compressed"}).observation(
            _X(), noise_embed_text=np.zeros(8))


def test_enhancer_takes_the_embedding_per_utterance(embed_model):
    sde = OUVE()
    X = _X()
    score = gaussian_score(torch.zeros(()), torch.full((16, 20), 0.05), sde)
    enh = ENHANCERS.build("udiffse_plus", n_steps=6, n_samples=2, noise="embed_nmf",
                          noise_conf={"decoder": embed_model, "domain": "compressed"})
    assert "noise_embed_text.scp" in enh.needs
    with pytest.raises(InputError, match="noise_embed_text"):
        enh(score, sde, X)
    out = enh(score, sde, X, noise_embed_text=np.ones(8, np.float32))
    assert out.shape == X.shape and torch.isfinite(out.real).all() and enh.last_stats["m_steps"] > 0


@pytest.mark.parametrize("m", ["text", "image", "clip"])
def test_recipe_configs_build(m, embed_model):
    import os

    from avse.utils.config import load_yaml
    from testutils import REPO

    cfg = load_yaml(os.path.join(REPO, "egs/mini_av/avse1/conf", f"enhance_udiffse_plus_noise_{m}.yaml"))
    conf = dict(cfg["method_conf"])
    assert conf["noise"] == "embed_nmf" and conf["noise_conf"]["embed"] == m
    conf["noise_conf"] = dict(conf["noise_conf"], decoder=embed_model)
    enh = ENHANCERS.build(cfg["method"], **conf)
    assert f"noise_embed_{m}.scp" in enh.needs and "frontend" in enh.needs


def test_floor_basis_adds_the_stationary_shape(embed_model):
    noise = build_noise("embed_nmf", {"decoder": embed_model, "domain": "compressed", "floor_basis": True,
                                      "init": "noisy"})
    assert noise.file_psd
    obs = noise.observation(_X(), noise_embed_text=np.ones(8, np.float32))
    assert obs.nmf.W.shape == (16, 4)
    torch.testing.assert_close(obs.nmf.W.sum(0), torch.ones(4))


def test_clip_reaches_the_nmf_and_bounds_the_fit(embed_model):
    """``clip``: the activations are fitted to the power capped at clip x the model, from
    the start (the fit to the noisy power) on; one loud bin moves them far less."""
    e = np.ones(8, np.float32)
    X = _X()
    X[3, 5] = 1e3
    H = {}
    for clip in (None, 3.0):
        obs = build_noise("embed_nmf", {"decoder": embed_model, "domain": "compressed", "init": "noisy",
                                        "clip": clip}).observation(X, noise_embed_text=e)
        assert obs.nmf.clip == clip
        H[clip] = obs.nmf.H[:, 5].sum()
    assert float(H[3.0]) < 0.01 * float(H[None])
