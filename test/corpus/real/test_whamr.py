"""WHAMR! inputs (WSJ0 index, WHAM! metadata, official room CSVs) and the mixing."""
import os

import numpy as np
import pytest
import soundfile as sf

from avse.corpus.real import whamr
from avse.errors import InputError
from avse.simulate.room import simulate_rirs
from avse.simulate.whamr import MIXTURES, SOURCES, version, whamr_sources
from fake_corpora import make_reverb_params, make_wham_noise, make_wsj0, speech_like


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("whamr_in")
    make_wsj0(str(root / "wsj0_wav"))
    mixes = make_wham_noise(str(root / "wham_noise"))
    for s, names in mixes.items():
        make_reverb_params(str(root / "params" / f"reverb_params_{s}.csv"), names)
    return root, mixes


def test_parse_mix_name():
    assert whamr.parse_mix_name("011a0101_1.1227_20ec0112_-1.1227.wav") == ("011a0101", 1.1227, "20ec0112", -1.1227)
    with pytest.raises(InputError, match="not a wsj0-2mix name"):
        whamr.parse_mix_name("011a0101_20ec0112")


def test_index_wsj0_finds_subsets_below_the_root(inputs, tmp_path):
    root, _ = inputs
    idx = whamr.index_wsj0(str(root / "wsj0_wav"))
    assert idx["si_tr_s"]["01aa0101"].endswith("wsj0/si_tr_s/01a/01aa0101.wav")
    assert set(idx["si_et_05"]) == {"440c0201", "441c0202"}
    with pytest.raises(InputError, match=r"WSJ0=.*si_tr_s/<spk>/<utt>.wav"):
        whamr.index_wsj0(str(tmp_path))


def test_metadata_and_official_rooms(inputs, tmp_path):
    root, mixes = inputs
    p = whamr.read_mix_params(str(root / "wham_noise"), "tt")
    assert set(p) == set(mixes["tt"]) and all(-6 <= v["snr"] <= 3 for v in p.values())
    rooms = whamr.read_reverb_params(str(root / "params" / "reverb_params_tt.csv"))
    spec = whamr.official_room(rooms[mixes["tt"][0]])
    assert spec.dims == [5.5, 6.0, 3.2] and spec.mics == [[2.7, 3.0, 1.2]] and spec.t60 == 0.15
    assert spec.sources[1] == [3.9, 2.2, 1.5] and 0 < spec.absorption <= 0.99
    bad = tmp_path / "reverb_params_tt.csv"
    bad.write_text("utterance_id,room_x\nx,1\n")
    with pytest.raises(InputError, match="missing columns"):
        whamr.read_reverb_params(str(bad))
    with pytest.raises(InputError, match="mix_param_meta_cv.csv: not found"):
        whamr.read_mix_params(str(tmp_path), "cv")


def test_sampled_room_is_whamr_like_and_seeded():
    a = whamr.sampled_room(np.random.default_rng(5))
    b = whamr.sampled_room(np.random.default_rng(5))
    assert a.to_json() == b.to_json() and len(a.mics) == 1 and len(a.sources) == 2
    assert 5 <= a.dims[0] <= 10 and 3 <= a.dims[2] <= 4 and 0.1 <= a.t60 <= 1.0


def _power(x):
    return float(np.mean(np.asarray(x, np.float64) ** 2))


def test_whamr_sources_levels_snr_and_versions():
    s1, s2 = speech_like(0.6, 1), speech_like(0.4, 2)
    noise = 0.1 * np.random.default_rng(0).standard_normal(16000)
    spec = whamr.official_room({"room_x": 5.5, "room_y": 6.0, "room_z": 3.2, "micL_x": 2.7, "micL_y": 3.0,
                                "micR_x": 2.86, "micR_y": 3.0, "mic_z": 1.2, "s1_x": 2.0, "s1_y": 4.1,
                                "s1_z": 1.6, "s2_x": 3.9, "s2_y": 2.2, "s2_z": 1.5, "T60": 0.2})
    rirs, direct, _ = simulate_rirs(spec, 16000)
    sig = whamr_sources(s1, s2, noise, (1.5, -1.5), -2.0, rirs, direct, start=100, peak=0.9)
    n1, n2 = len(s1), len(s2)
    assert all(len(sig[k]) == n1 for k in SOURCES) and sig["n_min"] == n2
    g = sig["gain"]
    # anechoic image keeps the dry energy (times the joint gain); levels and SNR as asked
    assert np.isclose(np.sum(sig["s1_anechoic"].astype(float) ** 2), g * g * np.sum(s1.astype(float) ** 2), rtol=0.02)
    rel = 10 * np.log10(np.sum(sig["s1_anechoic"][:n1].astype(float) ** 2) / n1 /
                        (np.sum(sig["s2_anechoic"][:n2].astype(float) ** 2) / n2))
    assert abs(rel - 3.0) < 0.1
    assert abs(10 * np.log10(_power(sig["s1_anechoic"]) / _power(sig["noise"])) + 2.0) < 0.05
    assert _power(sig["s1_reverb"]) != pytest.approx(_power(sig["s1_anechoic"]), rel=1e-3)
    v16 = version(sig, 16000, "max")
    assert set(v16) == set(SOURCES) | set(MIXTURES)
    assert np.allclose(v16["mix_both_reverb"], v16["s1_reverb"] + v16["s2_reverb"] + v16["noise"], atol=1e-6)
    assert np.allclose(v16["mix_single_anechoic"], v16["s1_anechoic"] + v16["noise"], atol=1e-6)
    vmin = version(sig, 16000, "min")
    assert len(vmin["mix_clean_reverb"]) == n2 and np.array_equal(vmin["noise"], v16["noise"][:n2])
    v8 = version(sig, 8000, "min")
    assert len(v8["s1_reverb"]) == n2 // 2
    assert max(float(np.max(np.abs(x))) for x in v16.values()) <= 0.9 + 1e-6


def _maker(root, out, **kw):
    from avse.bin.prep_whamr import get_parser, Maker
    from avse.utils.config import parse_args

    args = parse_args(get_parser(), ["--wsj0_dir", str(root / "wsj0_wav"), "--wham_dir", str(root / "wham_noise"),
                                     "--out_dir", str(out), "--data_dir", str(out / "data"),
                                     "--sample_rates", "[16k]", "--lengths", "[max]", "--splits", "[tr,tt]",
                                     "--room", "{t60: [0.1, 0.25]}"] + [f"--{k}={v}" for k, v in kw.items()])
    return Maker(args)


def test_mixtures_do_not_depend_on_job_split(inputs, tmp_path):
    """Each mixture is drawn from its own stream: any order or split gives the same files."""
    root, _ = inputs
    a, b = _maker(root, tmp_path / "a"), _maker(root, tmp_path / "b")
    assert a.keys == b.keys and len(a.keys) == 4
    rows_a = {k: a(k) for k in a.keys}
    rows_b = {k: b(k) for k in reversed(b.keys)}
    assert rows_a == rows_b
    k = a.keys[-1]
    split, name = k.split("/")
    x, _ = sf.read(a.path("16k", "max", split, "mix_both_reverb", name))
    y, _ = sf.read(b.path("16k", "max", split, "mix_both_reverb", name))
    assert np.array_equal(x, y)


def test_missing_wsj0_utterance_is_named(inputs, tmp_path):
    root, mixes = inputs
    os.rename(root / "wsj0_wav" / "wsj0" / "si_et_05", root / "gone")
    try:
        m = _maker(root, tmp_path / "c")
        key = next(k for k in m.keys if k.startswith("tt/22go0101"))
        with pytest.raises(InputError, match=r"WSJ0 utterance 440c0201 not found in si_dt_05/si_et_05"):
            m(key)
    finally:
        os.rename(root / "gone", root / "wsj0_wav" / "wsj0" / "si_et_05")
