import numpy as np
import torch

from avse.corpus.synthetic.noise import NOISE_DESCRIPTIONS
from avse.corpus.synthetic.noise_text import corpus
from avse.corpus.synthetic.scenes import render_scene
from avse.nets.noise_embed import NoiseEmbedModel, info_nce, mel_filterbank
from avse.nets.noise_embedder import NoiseEmbedder, retrieval_top1, save_noise_embed
from avse.nets.noise_tokenizer import Tokenizer
from avse.utils.seeding import utt_rng


def _tok():
    return Tokenizer.train(corpus(sorted(NOISE_DESCRIPTIONS), 30), 200)


def test_encoders_give_unit_vectors_and_bases_sum_to_one():
    torch.manual_seed(0)
    tok = _tok()
    m = NoiseEmbedModel(dim=16, vocab_size=tok.vocab_size, ext_dim=5, decoder_n_fft=62, decoder_rank=3)
    ea = m.encode("audio", torch.randn(2, 8000))
    et = m.encode("text", tok.encode(["rain on a roof", "a busy road with cars passing"]))
    ei = m.encode("image", torch.rand(2, 3, 64, 64) * 2 - 1)
    ee = m.encode("ext", torch.randn(2, 5))
    for e in (ea, et, ei, ee):
        assert e.shape == (2, 16)
        assert torch.allclose(e.norm(dim=-1), torch.ones(2), atol=1e-5)
    W = m.decoder(et)
    assert W.shape == (2, 32, 3) and torch.allclose(W.sum(1), torch.ones(2, 3), atol=1e-5)
    assert mel_filterbank(512, 20, 16000).shape == (20, 257)


def test_info_nce_prefers_matched_pairs():
    a = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    assert info_nce(a, a, torch.tensor(10.0)) < info_nce(a, a.roll(1, 0), torch.tensor(10.0))


def test_tokenizer_pads_with_minus_one():
    ids = _tok().encode(["rain", "a loud busy cafe in a car"])
    assert ids.shape[0] == 2 and (ids[0] == -1).any() and (ids[1] >= 0).all()


def test_save_load_roundtrip_and_retrieval(tmp_path):
    tok = _tok()
    conf = dict(dim=8, vocab_size=tok.vocab_size, decoder_n_fft=30, decoder_rank=2)
    m = NoiseEmbedModel(**conf)
    path = str(tmp_path / "m.pt")
    save_noise_embed(path, m, tok, conf, {"fs": 16000, "types": ["rain", "fan"]})
    emb = NoiseEmbedder.load(path)
    img = render_scene("rain", utt_rng(0))
    assert torch.allclose(emb.images([img]), m.eval().encode("image", torch.from_numpy(
        img.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1)[None]), atol=1e-5)
    assert emb.bases(emb.texts(["rain"])).shape == (1, 16, 2)
    e = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    q = {"a": e[:1], "b": e[1:2], "c": e[2:]}
    assert retrieval_top1(q, q, np.random.default_rng(0), trials=3) == 1.0
