"""avse.bin.simulate (stage 2): determinism across job splits, resume, merge, errors."""
import filecmp
import os

import numpy as np
import pytest
import soundfile as sf
import yaml

import avse.simulate.simulator as simulator_mod
from avse.bin.simulate import get_parser, main, simulate
from avse.corpus.synthetic.noise import generate_noise
from avse.data.datadir import DataDir
from avse.errors import InputError, StageError
from avse.io.scp import read_list, read_table, split_keys
from avse.utils.config import parse_args
from testutils import speechlike

FS = 16000
ROOM = {"t60": [0.2, 0.3], "length": [5.0, 6.0], "width": [5.0, 6.0], "n_mics": 2, "max_order": 8}


@pytest.fixture
def dirs(tmp_path, make_wav):
    """A clean speech dir (4 utterances, 2 speakers, text + video.scp) and a noise dir."""
    d = tmp_path / "data"
    d.mkdir()
    utts = {}
    for i, (spk, n) in enumerate([("spkA", 1), ("spkA", 2), ("spkB", 1), ("spkB", 2)]):
        u = f"{spk}_{n:03d}"
        utts[u] = (spk, make_wav(f"src/{u}.wav", speechlike(0.6 + 0.15 * i, seed=i, f0=110 + 30 * i)))
    keys = sorted(utts)
    (d / "wav.scp").write_text("".join(f"{k} {utts[k][1]}\n" for k in keys))
    (d / "utt2spk").write_text("".join(f"{k} {utts[k][0]}\n" for k in keys))
    (d / "text").write_text("".join(f"{k} words of {k}\n" for k in keys))
    (tmp_path / "videos").mkdir()
    for k in keys:  # placeholders: the stage only copies the paths
        (tmp_path / "videos" / f"{k}.mp4").write_bytes(b"")
    (d / "video.scp").write_text("".join(f"{k} {tmp_path}/videos/{k}.mp4\n" for k in keys))
    for k in keys:  # precomputed visual features follow their utterance too
        np.save(tmp_path / "videos" / f"{k}_feats.npy", np.zeros((3, 2), np.float32))
    (d / "lip_feats.scp").write_text("".join(f"{k} {tmp_path}/videos/{k}_feats.npy\n" for k in keys))
    nd = tmp_path / "noise"
    nd.mkdir()
    rows = []
    for t, sec in [("white", 2.0), ("pink", 0.4), ("music", 1.5)]:  # pink shorter than any utterance
        x = 0.1 * generate_noise(t, sec, FS, np.random.default_rng(len(t)))
        rows.append((f"{t}_00", t, make_wav(f"noise_wav/{t}_00.wav", x)))
    (nd / "wav.scp").write_text("".join(f"{k} {p}\n" for k, _, p in rows))
    (nd / "utt2noise").write_text("".join(f"{k} {t}\n" for k, t, _ in rows))
    (nd / "noise_desc").write_text("music some music\npink pink noise\nwhite white noise\n")
    return str(d), str(nd)


def _args(dirs, out, *extra):
    return ["--data_dir", dirs[0], "--noise_dir", dirs[1], "--out_dir", out, "--progress", "false",
            "--snrs", "[-5, 5]", *extra]


def _run_split(dirs, out, n_jobs, extra, tmp_path):
    keys_file = str(tmp_path / f"keys_{os.path.basename(out)}")
    assert main(_args(dirs, out, *extra, "--list_keys", keys_file)) == 0
    keys = read_list(keys_file)
    for j, part in enumerate(split_keys(keys, n_jobs), 1):
        kf = str(tmp_path / f"keys_{os.path.basename(out)}.{j}")
        with open(kf, "w") as f:
            f.writelines(k + "\n" for k in part)
        assert main(_args(dirs, out, *extra, "--key_file", kf, "--job", str(j))) == 0
    assert main(_args(dirs, out, *extra, "--merge", "true")) == 0
    return keys


def _same_outputs(a, b):
    ta, tb = DataDir(a), DataDir(b)
    assert ta.keys == tb.keys
    for name in ta.utt_tables():
        va, vb = ta.table(name), tb.table(name)
        if name.endswith(".scp") and name not in ("video.scp",):
            for k in ta.keys:
                assert filecmp.cmp(va[k], vb[k], shallow=False), (name, k)
        else:
            assert va == vb, name


CASES = {
    "anechoic": [],
    "cycle": ["--snr_mode", "cycle"],
    "room_2spk_random": ["--room", yaml.safe_dump(ROOM, default_flow_style=True).strip(), "--n_speakers", "2",
                         "--sirs", "[0, 5]", "--snr_mode", "random"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_job_equals_two_jobs(dirs, tmp_path, case):
    extra = CASES[case]
    k1 = _run_split(dirs, str(tmp_path / "one"), 1, extra, tmp_path)
    k2 = _run_split(dirs, str(tmp_path / "two"), 2, extra, tmp_path)
    assert k1 == k2
    _same_outputs(str(tmp_path / "one"), str(tmp_path / "two"))
    out = DataDir(str(tmp_path / "one"))
    out.validate(check_files=True)
    assert os.path.isfile(out.file(".done")) and os.path.isfile(out.file("config.yaml"))
    src_text = read_table(os.path.join(dirs[0], "text"))
    snr = {k: float(v) for k, v in out.table("utt2snr").items()}
    if case == "anechoic":
        assert len(out.keys) == 8 and all(k.endswith(("_snr-05", "_snr+05")) for k in out.keys)
        assert {k: v for k, v in snr.items() if k.endswith("+05")} == {k: 5.0 for k in out.keys if k.endswith("+05")}
        for k in out.keys:
            assert out.table("text")[k] == src_text[k[:-7]]
            assert out.table("lip_feats.scp")[k].endswith(f"/videos/{k[:-7]}_feats.npy")
            assert out.table("utt2spk")[k] == k[:4]
        assert not out.has("reverb1.scp") and not out.has("utt2t60")
        # the written files obey the SNR definition (PCM quantisation aside)
        for k in out.keys:
            s, _ = sf.read(out.table("spk1.scp")[k])
            n, _ = sf.read(out.table("noise1.scp")[k])
            assert abs(10 * np.log10(np.sum(s ** 2) / np.sum(n ** 2)) - snr[k]) < 0.1
            assert float(out.table("utt2gain")[k]) <= 1.0
    elif case == "cycle":  # one SNR per utterance, the two SNRs in turn
        src = sorted(read_list(os.path.join(dirs[0], "wav.scp")))
        assert len(out.keys) == len(src) == 4
        assert sorted(snr[k] for k in out.keys) == [-5.0, -5.0, 5.0, 5.0]
        assert sorted(k[:-7] for k in out.keys) == src
    else:
        assert out.keys == sorted(read_list(os.path.join(dirs[0], "wav.scp")))
        assert all(-5 <= v <= 5 for v in snr.values())
        for k in out.keys:
            target, measured = out.table("utt2t60")[k].split()
            assert 0.2 <= float(target) <= 0.3
            rir = np.load(out.table("rir1.scp")[k])
            assert rir.dtype == np.float32 and rir.ndim == 2 and rir.shape[0] == 2
            assert sf.info(out.table("wav.scp")[k]).channels == 1  # reference mic only
            src = out.table("utt2source")[k].split()
            assert src[0] == k and out.table("utt2spk")[src[3]] != out.table("utt2spk")[k]
            assert out.table("utt2room")[k].startswith("{")
        for t in ("spk2.scp", "reverb1.scp", "utt2sir"):
            assert out.has(t)
    assert read_table(out.file("noise_desc")) == {"music": "some music", "pink": "pink noise",
                                                 "white": "white noise"}


@pytest.mark.parametrize("n_speakers", [2, 3])
def test_interferers_video_follows_utt2source(dirs, tmp_path, n_speakers):
    """Talker i >= 2 of a mixture gets its own utterance's video.scp / lip_feats.scp entry under
    the per-source name (video<i>.scp), in the order of utt2source; not its text."""
    out = str(tmp_path / "mix")
    _run_split(dirs, out, 2, ["--n_speakers", str(n_speakers), "--snr_mode", "cycle"], tmp_path)
    d = DataDir(out)
    d.validate(check_files=True)  # video2.scp .. are per-utterance tables, sorted, complete
    src_video = read_table(os.path.join(dirs[0], "video.scp"))
    src_feats = read_table(os.path.join(dirs[0], "lip_feats.scp"))
    names = set(d.utt_tables())
    for i in range(2, n_speakers + 1):
        assert {f"video{i}.scp", f"lip_feats{i}.scp", f"spk{i}.scp"} <= names
    assert f"video{n_speakers + 1}.scp" not in names and not any(n.startswith("text") and n != "text" for n in names)
    for k in d.keys:
        talkers = d.table("utt2source")[k].split()
        talkers = [talkers[0]] + talkers[3:]
        assert len(talkers) == n_speakers
        assert d.table("video.scp")[k] == src_video[talkers[0]]
        for i, u in enumerate(talkers[1:], 2):
            assert u != talkers[0]
            assert d.table(f"video{i}.scp")[k] == src_video[u]
            assert d.table(f"lip_feats{i}.scp")[k] == src_feats[u]
    with open(d.file("video2.scp")) as f:
        lines = f.read().splitlines()
    assert [ln.split()[0] for ln in lines] == sorted(d.keys)


def test_resume_after_interruption(dirs, tmp_path, monkeypatch):
    ref = str(tmp_path / "ref")
    keys = _run_split(dirs, ref, 1, [], tmp_path)
    out = str(tmp_path / "out")
    half = str(tmp_path / "half")
    with open(half, "w") as f:
        f.writelines(k + "\n" for k in keys[:3])
    assert main(_args(dirs, out, "--key_file", half)) == 0
    # a killed job: the 3rd utterance of the full run dies half-way
    calls = []
    real = simulator_mod.mix_utterance

    def dying(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(simulator_mod, "mix_utterance", dying)
    with pytest.raises(KeyboardInterrupt):
        main(_args(dirs, out))
    assert len(calls) == 3  # the first 3 keys were skipped: they were done
    calls.clear()
    monkeypatch.setattr(simulator_mod, "mix_utterance", lambda *a, **kw: (calls.append(1), real(*a, **kw))[1])
    # merging now is refused: not every key is done
    assert main(_args(dirs, out, "--merge", "true")) == 1
    assert not os.path.exists(os.path.join(out, ".done"))
    assert main(_args(dirs, out)) == 0
    assert len(calls) == len(keys) - 3 - 2  # only the rest
    assert main(_args(dirs, out, "--merge", "true")) == 0
    _same_outputs(ref, out)
    calls.clear()
    assert main(_args(dirs, out)) == 0 and not calls  # a done dir returns at once


def test_config_file_and_overrides(dirs, tmp_path):
    conf = tmp_path / "sim.yaml"
    conf.write_text(yaml.safe_dump({"data_dir": dirs[0], "noise_dir": dirs[1], "snrs": [0],
                                    "noise_types": ["white"], "room": None, "seed": 3}))
    args = parse_args(get_parser(), ["--config", str(conf), "--out_dir", "x", "--snrs", "[10]"])
    assert args.snrs == [10] and args.noise_types == ["white"] and args.seed == 3
    out = str(tmp_path / "cfg")
    assert main(["--config", str(conf), "--out_dir", out, "--progress", "false"]) == 0
    assert main(["--config", str(conf), "--out_dir", out, "--merge", "true"]) == 0
    d = DataDir(out)
    assert all(k.endswith("_snr+00") for k in d.keys) and set(d.table("utt2noise").values()) == {"white"}
    saved = yaml.safe_load(open(d.file("config.yaml")))
    assert saved["snrs"] == [0] and saved["seed"] == 3 and "merge" not in saved
    # another configuration in the same dir is refused
    os.unlink(d.file(".done"))
    assert main(["--config", str(conf), "--out_dir", out, "--snrs", "[5]"]) == 1


def test_input_errors(dirs, tmp_path, make_wav):
    def run(*extra, out="o"):
        simulate(parse_args(get_parser(), _args(dirs, str(tmp_path / out), *extra)))

    with pytest.raises(StageError, match="run stage 1 first"):
        simulate(parse_args(get_parser(), _args((str(tmp_path / "nope"), dirs[1]), str(tmp_path / "o"))))
    with pytest.raises(StageError, match="noise data dir not found"):
        simulate(parse_args(get_parser(), _args((dirs[0], str(tmp_path / "nope")), str(tmp_path / "o"))))
    assert main(_args((str(tmp_path / "nope"), dirs[1]), str(tmp_path / "o"))) == 1
    with pytest.raises(InputError, match="unknown noise type.*'cafe'"):
        run("--noise_types", "[cafe]")
    with pytest.raises(InputError, match="selects no noise"):
        run("--noise_types", "[]")
    with pytest.raises(InputError, match="room config: unknown keys"):
        run("--room", "{t6: 0.3}")
    empty = tmp_path / "empty_noise"
    empty.mkdir()
    (empty / "wav.scp").write_text("")
    with pytest.raises(InputError, match="no noise recordings"):
        simulate(parse_args(get_parser(), _args((dirs[0], str(empty)), str(tmp_path / "o"))))
    # bad audio: wrong rate, several channels, NaN -- each names the utterance
    wavs = read_table(os.path.join(dirs[0], "wav.scp"))
    sf.write(wavs["spkB_001"], speechlike(0.5, fs=8000), 8000)
    with pytest.raises(InputError, match="spkB_001.*sample rate 8000"):
        run(out="o1")
    sf.write(wavs["spkB_001"], np.stack([speechlike(0.5)] * 2, axis=1), FS)
    with pytest.raises(InputError, match="spkB_001.*channels"):
        run(out="o2")
    sf.write(wavs["spkB_001"], np.array([0.1, np.nan] * 800, np.float32), FS, subtype="FLOAT")
    with pytest.raises(InputError, match="spkB_001.*NaN"):
        run(out="o3")
    # on_error skip leaves the utterance out and lists it
    out = str(tmp_path / "o4")
    assert main(_args(dirs, out, "--on_error", "skip")) == 0
    assert main(_args(dirs, out, "--on_error", "skip", "--merge", "true")) == 0
    assert not any(k.startswith("spkB_001") for k in DataDir(out).keys)
    assert "spkB_001_snr+05" in read_table(os.path.join(out, "skipped"))
