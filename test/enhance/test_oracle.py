"""``method: oracle_noise``: the true noise of a simulated mixture removed (noise-model bound)."""
import numpy as np
import pytest
import torch

from avse.dsp.stft import SpectralFrontEnd
from avse.enhance import ENHANCERS
from avse.errors import InputError
from testutils import speechlike

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread

FS = 16000
FE = SpectralFrontEnd(n_fft=254, hop=64)


def _mixture(seed=0, burst=False):
    """Speech-like ``s``, noise ``n`` (white, or white with a loud burst in its second
    half) at about 0 dB, and ``y = s + n`` (float32, 0.6 s)."""
    s = speechlike(0.6, seed=seed).astype(np.float32)
    n = np.random.default_rng(seed).standard_normal(s.size).astype(np.float32)
    if burst:
        n[s.size // 2:] *= 6.0
    n *= np.sqrt(np.mean(s ** 2) / np.mean(n ** 2))
    return s, n, s + n


def _run(y, n, scale=3.0, **conf):
    """The enhancer on ``X`` = the compressed STFT of ``y / scale``, zero-padded to a
    multiple of 16 frames as the enhance stage pads it; -> its decompressed output
    (F, T) of the unpadded frames, in the units of ``y``."""
    X, T = FE.pad_frames(FE(torch.from_numpy(y / scale)), 16)
    out = ENHANCERS.build("oracle_noise", **conf)(None, None, X.to(torch.complex64), frontend=FE, wav=y, noise1=n)
    assert out.shape == X.shape and out.dtype == torch.complex64
    return FE.decompress(FE.crop_frames(out, T)).to(torch.complex128) * scale


def _err_db(est, ref):
    return float(10 * torch.log10((est - ref).abs().pow(2).sum() / ref.abs().pow(2).sum()))


def test_subtract_recovers_the_speech_whatever_the_input_scale():
    s, n, y = _mixture()
    S = FE.stft(torch.from_numpy(s)).to(torch.complex128)
    for scale in (1.0, 7.5):
        assert _err_db(_run(y, n, scale=scale, gain="subtract"), S) < -60.0


def test_wiener_per_bin_beats_the_long_term_psd_on_a_noise_burst():
    s, n, y = _mixture(burst=True)
    S = FE.stft(torch.from_numpy(s)).to(torch.complex128)
    Y = FE.stft(torch.from_numpy(y)).to(torch.complex128)
    before = _err_db(Y, S)
    per_bin = _err_db(_run(y, n, stat="bin"), S)
    psd = _err_db(_run(y, n, stat="psd"), S)
    smooth = _err_db(_run(y, n, stat="bin", smooth=5), S)
    assert per_bin < psd < before, (before, psd, per_bin)
    assert smooth < before


def test_wiener_gain_is_the_power_subtraction_gain():
    s, n, y = _mixture(seed=1)
    Y = FE.stft(torch.from_numpy(y)).to(torch.complex128)
    P = FE.stft(torch.from_numpy(n)).abs().pow(2).to(torch.float64)
    for stat, Pn in (("bin", P), ("psd", P.mean(-1, keepdim=True))):
        G = (1 - Pn / Y.abs().pow(2)).clamp(0.1, 1.0)
        out = _run(y, n, stat=stat, g_min=0.1)
        assert torch.allclose(out, G * Y, rtol=1e-3, atol=1e-6 * float(Y.abs().max()))


@pytest.mark.parametrize("conf", [dict(gain="mask"), dict(stat="frame"), dict(smooth=4), dict(smooth=0),
                                  dict(g_min=1.0)])
def test_bad_settings_are_refused(conf):
    with pytest.raises(InputError, match="oracle_noise"):
        ENHANCERS.build("oracle_noise", **conf)


def test_missing_or_mismatched_inputs_are_refused():
    s, n, y = _mixture()
    X = FE(torch.from_numpy(y)).to(torch.complex64)
    enh = ENHANCERS.build("oracle_noise")
    with pytest.raises(InputError, match="noise1"):
        enh(None, None, X, frontend=FE, wav=y)
    with pytest.raises(InputError, match="at least as long"):
        enh(None, None, X, frontend=FE, wav=y, noise1=n[:100])
    with pytest.raises(InputError, match="wav.scp"):
        enh(None, None, X[:, :10], frontend=FE, wav=y, noise1=n)


def test_oracle_noise_model_gives_the_true_noise_power_in_the_enhancers_units():
    from avse.enhance.noise_choice import NOISES
    from avse.enhance.noise_models import decompress
    s, n, y = _mixture(burst=True)
    X, T = FE.pad_frames(FE(torch.from_numpy(y / 3.0)), 16)
    Xn = (X / X.abs().max()).to(torch.complex64)          # the enhancer's normalised input
    Y = decompress(Xn.to(torch.complex128), FE.alpha)
    Yr = FE.stft(torch.from_numpy(y)).to(torch.complex128)
    c = Yr.abs().pow(2).sum() / Y[:, :T].abs().pow(2).sum()   # |Y|^2 = |Yr|^2 / c
    Pn = FE.stft(torch.from_numpy(n)).abs().pow(2).to(torch.float64) / c
    obs = NOISES.build("oracle").observation(Xn, frontend=FE, wav=y, noise1=n)
    P = obs.linear_psd().to(torch.float64)
    assert P.shape == Xn.shape and torch.allclose(P[:, :T], Pn, rtol=1e-3, atol=1e-6 * float(Pn.max()))
    assert float(P[:, T:].abs().max()) == 0.0                 # padding frames: no noise
    lt = NOISES.build("oracle", stat="psd").observation(Xn, frontend=FE, wav=y, noise1=n).linear_psd()
    assert torch.allclose(lt[:, :T].to(torch.float64), Pn.mean(-1, keepdim=True).expand_as(Pn), rtol=1e-3)
    # smooth: the per-bin power averaged over 5 frames (a local PSD), the ends averaged over fewer
    sm = NOISES.build("oracle", smooth=5).observation(Xn, frontend=FE, wav=y, noise1=n).linear_psd()
    t = T // 2
    assert torch.allclose(sm[:, t].to(torch.float64), Pn[:, t - 2:t + 3].mean(-1), rtol=1e-3)
    assert torch.allclose(sm[:, 0].to(torch.float64), Pn[:, :3].mean(-1), rtol=1e-3)
    assert float(sm[:, T:].abs().max()) == 0.0
    with pytest.raises(InputError, match="stat"):
        NOISES.build("oracle", stat="frame")
    for bad in (2, 0, 1.5):
        with pytest.raises(InputError, match="smooth"):
            NOISES.build("oracle", smooth=bad)
    with pytest.raises(InputError, match="smooth"):
        NOISES.build("oracle", stat="psd", smooth=3)
    with pytest.raises(InputError, match="noise1"):
        NOISES.build("oracle").observation(Xn, frontend=FE, wav=y)
    # an enhancer with this noise model asks the enhance stage for both tables
    enh = ENHANCERS.build("udiffse_plus", noise="oracle")
    assert {"wav.scp", "noise1.scp", "frontend"} <= set(enh.needs)
