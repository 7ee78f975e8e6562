"""avse.simulate.mix: SNR/SIR, joint rescale, noise segments, room images."""
import numpy as np
import pytest
from scipy.signal import fftconvolve

from avse.errors import InputError
from avse.simulate.mix import loop_crossfade, mix_utterance, noise_segment
from avse.simulate.room import sample_room, simulate_rirs
from testutils import speechlike

FS = 16000


def _e(x):
    return float(np.sum(np.asarray(x, np.float64) ** 2))


def _db(a, b):
    return 10 * np.log10(_e(a) / _e(b))


def _ref(x):
    return x[0] if x.ndim == 2 else x


@pytest.fixture(scope="module")
def sig():
    rng = np.random.default_rng(0)
    return {"s1": speechlike(1.0, seed=1, f0=120), "s2": speechlike(1.4, seed=2, f0=210),
            "s3": speechlike(0.6, seed=3, f0=90),
            "noise": (0.1 * rng.standard_normal(3 * FS)).astype(np.float32)}


@pytest.mark.parametrize("snr", [-5.0, 0.0, 5.0, 20.0])
def test_snr_and_exact_sum_anechoic(sig, snr):
    r = mix_utterance([sig["s1"]], sig["noise"], snr, rng=np.random.default_rng(1))
    mix, nz, rev = r["mixture"], r["noise"], r["reverb"]
    assert mix.dtype == np.float32 and mix.shape == sig["s1"].shape == nz.shape
    assert abs(_db(rev[0], nz) - snr) < 0.1 and abs(r["snr"] - snr) < 0.1
    np.testing.assert_array_equal(mix, rev[0] + nz)
    np.testing.assert_array_equal(r["targets"][0], rev[0])
    np.testing.assert_allclose(r["targets"][0], sig["s1"] * r["gain"], atol=1e-6)
    assert r["sir"] is None and r["sirs"] == []
    assert np.max(np.abs(mix)) <= 0.9 + 1e-6


def test_joint_rescale_records_gain(sig):
    loud = sig["s1"] / np.max(np.abs(sig["s1"])) * 0.99
    r = mix_utterance([loud], sig["noise"], -5.0, rng=np.random.default_rng(2))
    assert 0 < r["gain"] < 1
    assert np.max(np.abs(r["mixture"])) == pytest.approx(0.9, abs=1e-6)
    np.testing.assert_array_equal(r["mixture"], r["reverb"][0] + r["noise"])
    np.testing.assert_allclose(r["targets"][0], loud * r["gain"], atol=1e-6)
    assert abs(r["snr"] + 5.0) < 0.1
    quiet = mix_utterance([0.1 * sig["s1"]], sig["noise"], 10.0, rng=np.random.default_rng(2))
    assert quiet["gain"] == 1.0
    # a lower peak forces a rescale; everything keeps its ratios
    low = mix_utterance([0.1 * sig["s1"]], sig["noise"], 10.0, rng=np.random.default_rng(2), peak=0.01)
    assert low["gain"] < 1 and np.max(np.abs(low["mixture"])) <= 0.01 + 1e-7
    np.testing.assert_allclose(low["noise"], quiet["noise"] * low["gain"], rtol=1e-5, atol=1e-9)


def test_two_and_three_talkers_sir(sig):
    r = mix_utterance([sig["s1"], sig["s2"]], sig["noise"], 5.0, sir_db=3.0, rng=np.random.default_rng(3))
    n = len(sig["s1"])
    assert all(len(x) == n for x in r["targets"] + r["reverb"])  # interferer trimmed to the target
    assert abs(_db(r["reverb"][0], r["reverb"][1]) - 3.0) < 0.1 and abs(r["sir"] - 3.0) < 0.1
    assert abs(_db(r["reverb"][0] + r["reverb"][1], r["noise"]) - 5.0) < 0.1
    np.testing.assert_array_equal(r["mixture"], r["reverb"][0] + r["reverb"][1] + r["noise"])
    # a shorter interferer is zero-padded; per-interferer SIRs
    r3 = mix_utterance([sig["s1"], sig["s2"], sig["s3"]], sig["noise"], 0.0, sir_db=[0.0, 6.0],
                       rng=np.random.default_rng(4))
    assert np.all(r3["reverb"][2][len(sig["s3"]):] == 0)
    assert [round(v, 1) for v in r3["sirs"]] == [0.0, 6.0]
    assert abs(r3["snr"]) < 0.1
    with pytest.raises(InputError, match="expected 2 values"):
        mix_utterance([sig["s1"], sig["s2"], sig["s3"]], None, None, sir_db=[1.0])


def test_noise_offsets_and_looping(sig):
    a = mix_utterance([sig["s1"]], sig["noise"], 0.0, rng=np.random.default_rng(5))
    b = mix_utterance([sig["s1"]], sig["noise"], 0.0, rng=np.random.default_rng(5))
    c = mix_utterance([sig["s1"]], sig["noise"], 0.0, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a["mixture"], b["mixture"])
    assert a["noise_offset"] != c["noise_offset"]
    # the segment is the noise from the offset, scaled
    off = a["noise_offset"][0]
    seg = sig["noise"][off:off + len(sig["s1"])]
    g = _e(a["noise"]) / _e(seg)
    np.testing.assert_allclose(a["noise"], seg * np.sqrt(g), rtol=1e-4, atol=1e-7)
    # a short noise is looped with a crossfade
    short = sig["noise"][:4000]
    r = mix_utterance([sig["s1"]], short, 0.0, rng=np.random.default_rng(7))
    assert r["noise"].shape == sig["s1"].shape and abs(r["snr"]) < 0.1
    y = loop_crossfade(short, 20000, 400)
    assert len(y) == 20000
    np.testing.assert_allclose(y[:3600], short[:3600], atol=1e-7)
    np.testing.assert_allclose(y[4000:7200], short[400:3600], atol=1e-7)  # second copy after the fade
    seg, off = noise_segment(short, 10000, np.random.default_rng(0))
    assert seg.shape == (10000,) and 0 <= off < 4000


def test_errors(sig):
    with pytest.raises(InputError, match="silent"):
        mix_utterance([sig["s1"]], np.zeros(FS, np.float32), 0.0)
    with pytest.raises(InputError, match="target"):
        mix_utterance([np.zeros(100, np.float32)], sig["noise"], 0.0)
    r = mix_utterance([sig["s1"]], None, None)
    assert r["snr"] == float("inf") and not np.any(r["noise"])


def test_room_images(sig):
    spec = sample_room({"t60": 0.25, "n_mics": 2, "length": [5, 6], "width": [5, 6], "max_order": 12},
                       np.random.default_rng(0), n_sources=2)
    rirs, direct, _ = simulate_rirs(spec, FS)
    r = mix_utterance([sig["s1"], sig["s2"]], sig["noise"], 0.0, sir_db=0.0, rirs=rirs, direct=direct,
                      rng=np.random.default_rng(1))
    n = len(sig["s1"])
    assert r["mixture"].shape == (2, n) and r["targets"][0].shape == (2, n)
    assert len(r["noise_offset"]) == 2  # a mono noise: one segment per microphone
    np.testing.assert_array_equal(r["mixture"], r["reverb"][0] + r["reverb"][1] + r["noise"])
    expect = fftconvolve(sig["s1"].astype(np.float64)[None], direct[0].astype(np.float64), axes=-1)[:, :n]
    np.testing.assert_allclose(r["targets"][0], expect * r["gain"], atol=1e-6)
    expect = fftconvolve(sig["s1"].astype(np.float64)[None], rirs[0].astype(np.float64), axes=-1)[:, :n]
    np.testing.assert_allclose(r["reverb"][0], expect * r["gain"], atol=1e-6)
    assert abs(_db(_ref(r["reverb"][0] + r["reverb"][1]), _ref(r["noise"]))) < 0.1  # reference mic
    assert abs(_db(_ref(r["reverb"][0]), _ref(r["reverb"][1]))) < 0.1
