"""``method: wpe``: weighted prediction error dereverberation, and its place in a cascade."""
import math

import pytest
import torch

from avse.diffusion.sampler import gaussian_score
from avse.diffusion.sde import OUVE
from avse.dsp.stft import SpectralFrontEnd
from avse.enhance import ENHANCERS
from avse.enhance.method_config import resolve_settings
from avse.enhance.wpe import delayed_frames, wpe
from avse.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _reverberant(F=24, T=400, L=60, t60_frames=40.0, seed=0):
    """Dry STFT ``S`` (F, T): complex Gaussian with a speech-like variance that switches
    every few frames between loud and near-silent; ``Y`` = ``S`` through a CTF whose
    tail (frames 1 .. L-1, random phases) decays by 60 dB in ``t60_frames`` and holds as
    much energy as the direct path."""
    g = torch.Generator().manual_seed(seed)
    seg = torch.rand(F, T // 8, generator=g).repeat_interleave(8, dim=1)
    var = torch.where(seg > 0.5, 1.0, 1e-3) * (0.2 + torch.rand(F, 1, generator=g))
    S = torch.complex(torch.randn(F, T, generator=g), torch.randn(F, T, generator=g)) * var.sqrt()
    ell = torch.arange(1, L, dtype=torch.float32)
    env = torch.exp(-math.log(1000.0) * ell / t60_frames)
    env = env / env.pow(2).sum().sqrt()                                  # tail energy 1
    ph = 2 * math.pi * torch.rand(F, L - 1, generator=g)
    H = torch.cat([torch.ones(F, 1, dtype=torch.complex64), torch.polar(env.expand(F, -1), ph)], dim=1)
    n = 2 * T
    Y = torch.fft.ifft(torch.fft.fft(S, n) * torch.fft.fft(H, n), n)[:, :T]
    return S, Y


def _err_db(est, ref):
    return float(10 * torch.log10((est - ref).abs().pow(2).sum() / ref.abs().pow(2).sum()))


def test_delayed_frames_shift_the_past_in():
    Y = torch.arange(1, 7, dtype=torch.float32).to(torch.complex64)[None]   # (1, 6): 1..6
    X = delayed_frames(Y, delay=2, taps=3)
    assert X.shape == (1, 6, 3)
    # out[t, k] = Y[t - 2 - k], 0 before the start
    assert X[0, :, 0].real.tolist() == [0, 0, 1, 2, 3, 4]
    assert X[0, :, 2].real.tolist() == [0, 0, 0, 0, 1, 2]


def test_wpe_removes_late_reverberation():
    S, Y = _reverberant()
    D, G = wpe(Y, taps=40, delay=1, iterations=3)
    assert D.shape == Y.shape and D.dtype == Y.dtype and G.shape == (Y.shape[0], 40)
    before, after = _err_db(Y, S), _err_db(D, S)
    assert before > -1.0            # as much reverberation as direct sound
    # a 40-tap filter inverts part of a tail as strong as the direct path (measured: 0 -> -3.7 dB)
    assert after < before - 3.0, (before, after)


def test_wpe_ignores_padding_frames():
    """Zero frames appended (a network's padding) barely change the filtered speech."""
    S, Y = _reverberant(seed=1)
    D, _ = wpe(Y, taps=40, delay=1)
    Dp, _ = wpe(torch.cat([Y, torch.zeros(Y.shape[0], 80, dtype=Y.dtype)], dim=1), taps=40, delay=1)
    Dp = Dp[:, :Y.shape[1]]
    # measured: -18 dB apart, and -2.2 against -2.6 dB from the dry; a floor of 1e-8 of the
    # mean power instead: -10 dB apart, the padded one -0.4 dB from the dry
    assert _err_db(Dp, D) < -15.0
    assert _err_db(Dp, S) < _err_db(D, S) + 0.75


def test_wpe_enhancer_in_the_compressed_domain():
    g = torch.Generator().manual_seed(0)
    fe = SpectralFrontEnd(n_fft=126, hop=32)
    X = fe(torch.randn(6000, generator=g))
    enh = ENHANCERS.build("wpe", taps=10, delay=2)
    assert enh.needs == ("frontend",) and enh.n_sources == 1 and not enh.needs_grad
    out = enh(None, None, X, frontend=fe)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert torch.isfinite(torch.view_as_real(out)).all() and enh.last_stats["nfe"] == 0
    # white noise has no reverberation to predict: little is taken away
    assert _err_db(fe.decompress(out), fe.decompress(X)) < -10.0
    with pytest.raises(InputError, match="front-end"):
        enh(None, None, X)
    for bad in ({"taps": 0}, {"delay": 0}, {"iterations": 0}, {"eps": 0.0}):
        with pytest.raises(InputError, match="wpe: need"):
            ENHANCERS.build("wpe", **bad)
    with pytest.raises(InputError, match="complex"):
        wpe(torch.zeros(3, 4))


def test_denoise_then_wpe_cascade():
    """UDiffSE+ then WPE as a cascade: the WPE step sees the first step's output."""
    g = torch.Generator().manual_seed(0)
    fe = SpectralFrontEnd(n_fft=126, hop=32)
    X = fe(torch.randn(4000, generator=g))
    var = (X / float(X.abs().max())).abs().pow(2) + 1e-3
    sde = OUVE()
    score = gaussian_score(torch.zeros(()), var, sde)
    usp = {"method": "udiffse_plus", "method_conf": {"n_steps": 4, "n_corrector": 0, "n_samples": 1}}
    step2 = {"method": "wpe", "method_conf": {"taps": 8, "delay": 2}}
    casc = ENHANCERS.build("cascade", steps=[usp, step2])
    assert casc.n_sources == 1 and casc.needs == ("frontend",)
    out = casc(score, sde, X, generator=torch.Generator().manual_seed(1), frontend=fe)
    first = ENHANCERS.build("udiffse_plus", **usp["method_conf"])(
        score, sde, X, generator=torch.Generator().manual_seed(1), frontend=fe)
    by_hand = ENHANCERS.build("wpe", **step2["method_conf"])(None, None, first, frontend=fe)
    assert torch.allclose(out, by_hand, atol=1e-5)
    # a config of it resolves with WPE's defaults filled in
    cfg = resolve_settings({"method": "wpe", "method_conf": {"taps": 8}}, "test")
    assert cfg["method_conf"] == {"taps": 8, "delay": 4, "iterations": 3, "eps": 0.01}
