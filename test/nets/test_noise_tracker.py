"""The noise tracker network and its training: scale invariance, the null condition,
the likelihood loss, synthetic rooms, and a tracker that learns a noise burst."""
import math

import numpy as np
import pytest
import torch

from avse.dsp.stft import SpectralFrontEnd
from avse.nets.noise_tracker import NoiseTracker, is_nll, load_tracker, log_power, save_tracker
from avse.train.noise_tracker import MixtureSampler, synthetic_rir, train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_scale_invariance_and_null_condition():
    torch.manual_seed(0)
    net = NoiseTracker(n_freq=17, hidden=8, blocks=2, cond_dim=4).eval()
    with torch.no_grad():
        net.null.normal_()
        for b in net.blocks:
            b.film.weight.normal_()
    logp = torch.randn(2, 17, 20)
    e = torch.randn(2, 4)
    with torch.no_grad():
        out = net(logp, e)
        assert torch.allclose(net(logp + 3.0, e), out + 3.0, atol=1e-5)       # power x e^3: variance x e^3
        assert torch.allclose(net(logp, None), net(logp, e, torch.tensor([True, True])))
        mixed = net(logp, e, torch.tensor([True, False]))
        assert torch.allclose(mixed[1], out[1]) and not torch.allclose(mixed[0], out[0])
    with pytest.raises(ValueError, match="condition"):
        net(logp, torch.randn(2, 5))
    with pytest.raises(ValueError, match="log power"):
        net(torch.randn(2, 16, 20))


def test_is_nll_is_zero_at_the_true_power_and_positive_elsewhere():
    P = torch.rand(3, 5, 7) + 0.1
    assert float(is_nll(P, P.log())) == pytest.approx(0.0, abs=1e-6)
    assert float(is_nll(P, P.log() + 0.5)) > 0.01 and float(is_nll(P, P.log() - 0.5)) > 0.01


def test_synthetic_rir_has_the_asked_decay_and_direct_to_reverberant_ratio():
    fs = 8000
    h = synthetic_rir(np.random.default_rng(0), fs, t60=0.6, drr_db=4.0)
    assert len(h) == int(1.2 * 0.6 * fs) and h[0] > 0.9
    drr = 10 * np.log10(h[0] ** 2 / np.sum(h[1:] ** 2))
    assert drr == pytest.approx(4.0, abs=0.1)
    edc = np.cumsum(h[::-1] ** 2)[::-1]                 # Schroeder integral of the tail
    db = 10 * np.log10(edc / edc[1])
    i5, i25 = np.argmax(db < -5), np.argmax(db < -25)
    t60 = 3 * (i25 - i5) / fs                            # T20 x 3
    assert t60 == pytest.approx(0.6, rel=0.15)


def _bursts(n, fs, rng):
    """A noise that is off half the time: 0.25-s bursts of low-pass noise."""
    x = np.convolve(rng.standard_normal(n), np.ones(4) / 4, mode="same")
    gate = np.repeat(rng.random(n // (fs // 4) + 1) < 0.5, fs // 4)[:n]
    return (x * gate).astype(np.float32)


def test_training_learns_a_time_varying_noise_and_the_file_round_trips(tmp_path):
    """On tones plus bursty noise, a few dozen steps bring the tracker's noise likelihood
    below that of the best stationary variance (the long-term noise PSD of each item)."""
    fs, rng = 8000, np.random.default_rng(0)
    t = np.arange(3 * fs) / fs
    speech = [(0.3 * np.sin(2 * np.pi * f0 * t) * (np.sin(2 * np.pi * 1.5 * t) > 0)).astype(np.float32)
              for f0 in (600.0, 900.0, 1300.0)]
    noise = {"burst": [_bursts(3 * fs, fs, rng) for _ in range(2)]}
    fe = SpectralFrontEnd(n_fft=62, hop=16)
    sampler = MixtureSampler(speech, noise, fs, snr_range=(-3, 3))
    torch.manual_seed(0)
    net = NoiseTracker(n_freq=fe.n_freq, hidden=32, blocks=4)
    valid = sampler.batch(np.random.default_rng(1), 8, fs)
    rows = []
    train(net, fe, sampler, np.random.default_rng(2), 80, 8, fs, 3e-3, on_log=rows.append, valid=valid,
          log_every=40)
    P = fe.stft(valid["noise"]).abs().pow(2)
    stationary = float(is_nll(P, P.mean(-1, keepdim=True).clamp_min(1e-10).log().expand_as(P)))
    with torch.no_grad():
        tracked = float(is_nll(P, net(log_power(fe.stft(valid["mix"])))))
    assert rows[-1]["valid"] == pytest.approx(tracked, rel=1e-4)
    assert tracked < stationary - 0.1, (tracked, stationary)
    path = str(tmp_path / "t.pt")
    save_tracker(path, net, dict(n_freq=fe.n_freq, hidden=32, blocks=4, cond_dim=0), {"frontend": fe.config()})
    net2, meta = load_tracker(path)
    assert meta["frontend"]["n_fft"] == 62
    logp = log_power(fe.stft(valid["mix"]))
    with torch.no_grad():
        assert torch.equal(net2(logp), net(logp))
    assert math.isfinite(rows[0]["loss"])


def test_sampler_refuses_bad_settings():
    from avse.errors import InputError

    with pytest.raises(InputError, match="speech"):
        MixtureSampler([], {"a": [np.zeros(10, np.float32)]}, 8000)
    with pytest.raises(InputError, match="reverb_prob"):
        MixtureSampler([np.ones(10, np.float32)], {"a": [np.ones(10, np.float32)]}, 8000, reverb_prob=2)
    with pytest.raises(InputError, match="embedding"):
        MixtureSampler([np.ones(10, np.float32)], {"a": [np.ones(10, np.float32)]}, 8000,
                       emb={"b": torch.zeros(1, 3)})


def test_new_noise_instances_keep_the_type_spectrum_roughly_and_length():
    """``noise_aug``: new instances have the asked length, are finite and differ from the
    recordings; their spectrum stays near the type's (speed 0.8-1.25, tilt |b| <= 0.6)."""
    fs, rng = 8000, np.random.default_rng(0)
    low = [np.convolve(rng.standard_normal(2 * fs), np.ones(8) / 8, mode="same").astype(np.float32)
           for _ in range(2)]
    s = MixtureSampler([np.ones(fs, np.float32)], {"low": low}, fs, noise_aug=1.0)
    x = s.new_instance("low", np.random.default_rng(1), fs)
    assert x.shape == (fs,) and x.dtype == np.float32 and np.isfinite(x).all() and np.std(x) > 0
    assert not any(np.allclose(x, r[:fs]) for r in low)
    P = np.abs(np.fft.rfft(x)) ** 2
    assert P[: len(P) // 8].sum() > 5 * P[len(P) // 2:].sum()      # still a low-pass noise
    items = [s.item(np.random.default_rng(k), fs // 2) for k in range(3)]
    assert all(i[1].shape == (fs // 2,) for i in items)
    from avse.errors import InputError

    with pytest.raises(InputError, match="noise_aug"):
        MixtureSampler([np.ones(10, np.float32)], {"a": [np.ones(10, np.float32)]}, 8000, noise_aug=1.5)
