"""The 'features' lip encoder: precomputed (B, T, D) visual features instead of crops,
and how a score model tells them from embeddings."""
import pytest
import torch

from avse.errors import InputError
from avse.nets.lip_encoder import build_lip_encoder, encoder_input, is_encoder_input, lip_table

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def test_shapes_missing_frames_and_errors():
    torch.manual_seed(0)
    enc = build_lip_encoder("features", {"in_dim": 12, "dim": 8, "tcn_layers": 2})
    assert encoder_input("features") == "features" and encoder_input("resnet_tcn") == "crops"
    assert lip_table("features") == "lip_feats.scp" and lip_table("resnet_tcn") == "lip.scp"
    assert lip_table("features", "avhubert.scp") == "avhubert.scp"
    x = torch.randn(2, 9, 12)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 4] = False
    out = enc(x, mask)
    assert out.shape == (2, 9, 8) and torch.all(out[1, 4] == 0) and torch.isfinite(out).all()
    y = x.clone()
    y[1, 4] = 100.0  # a missing frame's features reach no output
    torch.testing.assert_close(enc(y, mask), out)
    assert is_encoder_input(enc, x) and not is_encoder_input(enc, out)
    with pytest.raises(InputError, match=r"expected float features \(B, T, 12\).*mouth crops"):
        enc(torch.zeros(1, 9, 88, 88, dtype=torch.uint8))
    with pytest.raises(InputError, match=r"expected float features \(B, T, 12\)"):
        enc(torch.zeros(1, 9, 10))
    with pytest.raises(InputError, match="in_dim"):
        build_lip_encoder("features", {"dim": 8})
    with pytest.raises(InputError, match="must differ from in_dim"):
        build_lip_encoder("features", {"in_dim": 8, "dim": 8})


def test_score_model_encodes_features_and_takes_embeddings():
    from avse.diffusion.sde import SDES
    from avse.nets.score_model import ScoreModel

    torch.manual_seed(0)
    sde = SDES.build("ouve")
    m = ScoreModel.from_config("ncsnpp", {"preset": "tiny", "nf": 8, "ch_mult": [1, 2], "fusion": "concat",
                                          "lip_encoder": "features",
                                          "lip_encoder_conf": {"in_dim": 6, "dim": 4}}, sde).eval()
    x = torch.randn(1, 32, 16, dtype=torch.complex64)
    t = torch.tensor([0.5])
    feats, mask = torch.randn(1, 3, 6), torch.ones(1, 3, dtype=torch.bool)
    with torch.no_grad():
        a = m(x, t, cond=feats, cond_mask=mask)
        b = m(x, t, cond=m.encode_cond(feats, mask), cond_mask=mask)
    torch.testing.assert_close(a, b)


def test_vae_prior_encodes_features_and_takes_embeddings():
    from avse.nets.vae import VAES

    torch.manual_seed(0)
    m = VAES.build("vae", n_freq=17, latent=4, hidden=16, lip_encoder="features",
                   lip_encoder_conf={"in_dim": 6, "dim": 4}).eval()
    feats, mask = torch.randn(1, 4, 6), torch.ones(1, 4, dtype=torch.bool)
    a = m.visual(feats, mask)["cond"]
    b = m.visual(m.encode_cond(feats, mask), mask)["cond"]
    assert a.shape == (1, 4, 4)
    torch.testing.assert_close(a, b)
