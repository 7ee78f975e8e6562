import numpy as np
import torch

from avse.corpus.synthetic.noise import generate_noise
from avse.nets.noise_embed import NoiseEmbedModel
from avse.nets.noise_tokenizer import Tokenizer
from avse.corpus.synthetic.noise_text import corpus
from avse.train.noise_embed import NoiseItems, contrastive_loss, decoder_loss, fit_activations, train
from avse.utils.seeding import utt_rng


def _items():
    types = ["white", "brown", "music"]
    audio = {t: [generate_noise(t, 1.5, 16000, utt_rng(0, t))] for t in types}
    return NoiseItems(audio), types


def test_contrastive_training_lowers_the_loss(one_thread):
    torch.manual_seed(0)
    items, types = _items()
    tok = Tokenizer.train(corpus(types, 50), 120)
    m = NoiseEmbedModel(dim=16, vocab_size=tok.vocab_size, decoder_n_fft=62, decoder_rank=2, hidden=32)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        before = float(contrastive_loss(m, items.batch(types, np.random.default_rng(5), 4000, tok))[0])
    rows = []
    train(m, items, tok, rng, steps=60, decoder_steps=3, clip_samples=4000, lr=3e-3, decoder_modality="text",
          n_fft=62, hop=32, h_iters=3, log_every=1, on_log=rows.append)
    with torch.no_grad():
        after = float(contrastive_loss(m, items.batch(types, np.random.default_rng(5), 4000, tok))[0])
    assert after < before
    assert [r["phase"] for r in rows].count("decoder") == 3
    assert np.isfinite(float(decoder_loss(m, items.batch(types, rng, 4000, tok), "image", 62, 32, 3).detach()))


def test_fit_activations_reduces_is_divergence():
    torch.manual_seed(0)
    W = torch.rand(1, 10, 2) + 0.1
    W = W / W.sum(1, keepdim=True)
    V = W @ (torch.rand(1, 2, 20) * 3)
    from avse.enhance.nmf import is_divergence
    d1 = is_divergence(V, W @ fit_activations(V, W, 1))
    d30 = is_divergence(V, W @ fit_activations(V, W, 30))
    assert float(d30) < float(d1)
