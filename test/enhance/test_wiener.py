"""``method: wiener``: the power-subtraction Wiener gain of a registered noise model."""
import numpy as np
import pytest
import torch

from avse.dsp.stft import SpectralFrontEnd
from avse.enhance import ENHANCERS
from avse.enhance.noise_models import decompress
from avse.enhance.tracker_noise import TrackerNoise
from avse.errors import InputError
from avse.nets.noise_tracker import NoiseTracker, save_tracker
from testutils import speechlike

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread

FE = SpectralFrontEnd(n_fft=254, hop=64)


def _mixture(seed=0):
    """Speech-like ``s``, white noise ``n`` at 0 dB and ``y = s + n`` (float32, 0.6 s)."""
    s = speechlike(0.6, seed=seed).astype(np.float32)
    n = np.random.default_rng(seed).standard_normal(s.size).astype(np.float32)
    n *= np.sqrt(np.mean(s ** 2) / np.mean(n ** 2))
    return s, n, s + n


def _X(y, scale=3.0):
    X, T = FE.pad_frames(FE(torch.from_numpy(y / scale)), 16)
    return X.to(torch.complex64), T


def _err_db(est, ref):
    return float(10 * torch.log10((est - ref).abs().pow(2).sum() / ref.abs().pow(2).sum()))


@pytest.mark.parametrize("smooth", [1, 5])
def test_with_the_oracle_noise_model_it_is_oracle_noise(smooth):
    s, n, y = _mixture(seed=1)
    X, _ = _X(y)
    out = ENHANCERS.build("wiener", noise="oracle", noise_conf={"stat": "bin", "smooth": smooth}, g_min=0.1)(
        None, None, X, frontend=FE, wav=y, noise1=n)
    ref = ENHANCERS.build("oracle_noise", stat="bin", smooth=smooth, g_min=0.1)(None, None, X, frontend=FE, wav=y,
                                                                              noise1=n)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-6 * float(X.abs().max()))


def test_stationary_noise_model_removes_white_noise_whatever_the_input_scale():
    s, n, y = _mixture()
    S = FE.stft(torch.from_numpy(s)).to(torch.complex128)
    Y = FE.stft(torch.from_numpy(y)).to(torch.complex128)
    wiener = ENHANCERS.build("wiener", noise="stationary", noise_conf={"domain": "linear", "bias": 1.0})
    outs = []
    for scale in (1.0, 7.5):
        X, T = _X(y, scale)
        outs.append(FE.decompress(FE.crop_frames(wiener(None, None, X, frontend=FE), T)).to(torch.complex128) * scale)
        assert 0.0 < wiener.last_stats["gain_mean"] < 1.0 and wiener.last_stats["nfe"] == 0
    assert _err_db(outs[0], S) < _err_db(Y, S) - 2.0
    assert torch.allclose(outs[0], outs[1], rtol=1e-3, atol=1e-5 * float(Y.abs().max()))


def test_tracker_variance_sets_the_gain(tmp_path):
    """The gain is ``max(1 - V / |Y|^2, 0)`` with ``V`` the tracker's variance, in the
    units of the (normalised) input."""
    s, n, y = _mixture(seed=2)
    torch.manual_seed(0)
    net = NoiseTracker(n_freq=FE.n_freq, hidden=8, blocks=2)
    path = str(tmp_path / "tracker.pt")
    save_tracker(path, net, dict(n_freq=FE.n_freq, hidden=8, blocks=2, cond_dim=0), {"frontend": FE.config()})
    X, T = _X(y, scale=1.0)
    conf = {"model": path, "bias": 0.7}
    out = ENHANCERS.build("wiener", noise="tracker", noise_conf=conf)(None, None, X, frontend=FE)
    scale = float(X.abs().max())
    Y = decompress(X.to(torch.complex128) / scale, FE.alpha)    # the normalised linear STFT
    V = TrackerNoise(**conf).linear_psd(Y)
    G = (1 - V / Y.abs().pow(2).clamp_min(1e-30)).clamp(0.0, 1.0)
    assert torch.allclose(out.to(torch.complex128), X.to(torch.complex128) * G.pow(FE.alpha), rtol=1e-3,
                          atol=1e-5 * scale)


def test_silence_passes_through_and_bad_settings_are_refused():
    wiener = ENHANCERS.build("wiener")
    X = torch.zeros(FE.n_freq, 16, dtype=torch.complex64)
    assert torch.equal(wiener(None, None, X, frontend=FE), X)
    assert wiener.last_stats["passthrough"] == "silent"
    with pytest.raises(InputError, match="g_min"):
        ENHANCERS.build("wiener", g_min=1.0)
    with pytest.raises(InputError, match="wiener"):
        ENHANCERS.build("wiener", noise="nope")
    _, _, y = _mixture()
    X, _ = _X(y)
    with pytest.raises(InputError, match="frontend"):
        wiener(None, None, X)
    with pytest.raises(InputError, match="complex"):
        wiener(None, None, X.abs(), frontend=FE)
    compressed = ENHANCERS.build("wiener", noise="stationary", noise_conf={"domain": "compressed"})
    with pytest.raises(InputError, match="linear noise variance"):
        compressed(None, None, X, frontend=FE)


def test_mini_av_wiener_tracker_configs_differ_only_in_the_condition():
    """conf/enhance_wiener_noise_tracker{,_text,_image,_clip}.yaml: one tracker and gain, the
    embedding the only difference (null: blind); each builds its enhancer."""
    import os

    import yaml

    from testutils import REPO

    conf = os.path.join(REPO, "egs", "mini_av", "avse1", "conf")
    seen = {}
    for embed, suffix in ((None, ""), ("text", "_text"), ("image", "_image"), ("clip", "_clip")):
        with open(os.path.join(conf, f"enhance_wiener_noise_tracker{suffix}.yaml")) as f:
            c = yaml.safe_load(f)
        assert c["method"] == "wiener" and c["method_conf"]["noise"] == "tracker"
        assert c["method_conf"]["noise_conf"].pop("embed") == embed
        seen[suffix] = c
        w = ENHANCERS.build("wiener", **dict(c["method_conf"], noise_conf=dict(c["method_conf"]["noise_conf"],
                                                                                  embed=embed)))
        assert ("noise_embed_%s.scp" % embed in w.needs) == (embed is not None)
    assert all(c == seen[""] for c in seen.values())
