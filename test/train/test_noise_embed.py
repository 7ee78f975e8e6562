import numpy as np
import pytest
import torch

from avse.corpus.synthetic.noise import generate_noise
from avse.errors import InputError
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


def test_speech_like_sets_the_snr_and_loops_short_speech():
    noise = np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    short = np.sin(np.arange(3000) * 0.3).astype(np.float32)
    items = NoiseItems({"a": [noise], "b": [noise]}, speech=[short], snr_range=(3.0, 3.0))
    s = items.speech_like(noise, np.random.default_rng(0))
    assert s.shape == noise.shape and s.dtype == noise.dtype
    assert abs(10 * np.log10(np.mean(s ** 2) / np.mean(noise ** 2)) - 3.0) < 1e-3
    assert not np.any(NoiseItems({"a": [noise], "b": [noise]}).speech_like(noise, np.random.default_rng(0)))


def test_decoder_loss_fits_activations_to_noise_plus_speech(one_thread):
    torch.manual_seed(0)
    items, types = _items()
    tok = Tokenizer.train(corpus(types, 50), 120)
    m = NoiseEmbedModel(dim=16, vocab_size=tok.vocab_size, decoder_n_fft=62, decoder_rank=2, hidden=32)
    batch = items.batch(types, np.random.default_rng(3), 4000, tok)
    assert "speech" not in batch    # no speech given: the plain decoder batch
    plain = float(decoder_loss(m, batch, "text", 62, 32, 5).detach())
    silent = dict(batch, speech=torch.zeros_like(batch["audio"]))
    assert abs(float(decoder_loss(m, silent, "text", 62, 32, 5).detach()) - plain) < 1e-5 * abs(plain)
    tone = torch.sin(torch.arange(4000) * 0.2).expand_as(batch["audio"]) * 3 * batch["audio"].std()
    loud = float(decoder_loss(m, dict(batch, speech=tone), "text", 62, 32, 20).detach())
    robust = float(decoder_loss(m, dict(batch, speech=tone), "text", 62, 32, 20, clip=3.0).detach())
    assert loud > plain             # speech in the fit spoils the noise estimate
    assert np.isfinite(robust) and abs(robust - loud) > 1e-3 * loud   # the clipped updates fit differently
    with pytest.raises(InputError, match="clean speech"):    # the discriminative phase without speech
        train(m, items, tok, np.random.default_rng(0), steps=0, decoder_steps=0, clip_samples=4000, lr=1e-3,
              decoder_modality="text", n_fft=62, hop=32, h_iters=2, disc_steps=1)


def test_clipped_activations_resist_an_outlier():
    W = torch.full((1, 10, 1), 0.1)
    V = torch.ones(1, 10, 20)
    V[..., 5] = 100.0               # a loud frame of something else
    free = fit_activations(V, W, 2)
    clipped = fit_activations(V, W, 2, clip=3.0)
    start = fit_activations(V, W, 0)
    assert abs(float((W @ free)[0, 0, 5]) - 100.0) < 1e-3      # one free update fits the frame exactly
    assert float(clipped[0, 0, 5]) <= 9.0 * float(start[0, 0, 5]) + 1e-4   # at most x3 per clipped update
    assert float(clipped[0, 0, 5]) < 0.2 * float(free[0, 0, 5])
