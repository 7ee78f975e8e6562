"""avse.bin.enhance (stage 5) end to end with a briefly trained small prior."""
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from avse.bin.enhance import main
from avse.bin.train import main as train_main
from avse.data.datadir import DataDir
from avse.io.scp import read_table
from testutils import speechlike

# a small, fast configuration (the recipe uses the REFERENCE defaults)
FAST = {"n_steps": 4, "n_em": 2, "n_samples": 2, "lik_period": 2, "noise_conf": {"rank": 2}}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("prior")
    p = d / "c.wav"
    sf.write(str(p), speechlike(1.0, seed=5), 16000, subtype="FLOAT")
    (d / "wav.scp").write_text(f"c {p}\n")
    out = d / "exp"
    assert train_main(["--train_dir", str(d), "--out_dir", str(out), "--max_steps", "3",
                       "--model_conf", "{preset: tiny, nf: 8, ch_mult: [1, 2, 2]}", "--crop_frames", "16",
                       "--frontend_conf", "{n_fft: 126, hop: 32}", "--batch_size", "2", "--num_workers", "0",
                       "--progress", "false"]) == 0
    return str(out / "model.pt")


@pytest.fixture
def noisy_dir(tmp_path):
    """Four noisy utterances of different lengths (one longer than a pad multiple)."""
    d = tmp_path / "noisy"
    d.mkdir()
    rng = np.random.default_rng(0)
    rows, spk = [], []
    for i, sec in enumerate([0.5, 0.7, 0.33, 1.2]):
        x = speechlike(sec, seed=i) + 0.05 * rng.standard_normal(int(sec * 16000)).astype(np.float32)
        p = d / f"u{i}.wav"
        sf.write(str(p), 0.7 * x / np.max(np.abs(x)), 16000, subtype="FLOAT")
        rows.append(f"u{i} {p}\n")
        spk.append(f"u{i} s{i % 2}\n")
    (d / "wav.scp").write_text("".join(rows))
    (d / "utt2spk").write_text("".join(spk))
    return str(d)


def _conf(tmp_path, method="udiffse", **kw):
    p = tmp_path / f"{method}.yaml"
    conf = {**FAST, **kw}
    if method == "udiffse_plus":
        conf.pop("n_em")
    p.write_text(yaml.safe_dump({"method": method, "method_conf": conf}))
    return str(p)


def _wavs(out):
    return {k: sf.read(v)[0] for k, v in read_table(os.path.join(out, "wav.scp")).items()}


def test_enhance_end_to_end_and_job_split(model, noisy_dir, tmp_path):
    conf = _conf(tmp_path)
    base = ["--config", conf, "--model", model, "--data_dir", noisy_dir, "--seed", "1", "--progress", "false"]
    one = str(tmp_path / "one")
    assert main([*base, "--out_dir", one]) == 0
    assert main([*base, "--out_dir", one, "--merge", "true"]) == 0
    d = DataDir(one)
    d.validate()
    assert d.keys == ["u0", "u1", "u2", "u3"]
    timing = json.load(open(os.path.join(one, "timing.json")))
    assert timing["rtf"] > 0 and timing["device"] == "cpu" and timing["method"] == "udiffse"
    assert timing["nfe"] == 2 * 4 * 2 and timing["utterances"] == 4 and timing["passthrough"] == 0
    assert os.path.isfile(os.path.join(one, "config.yaml"))
    outs = _wavs(one)
    for k, y in outs.items():
        x, _ = sf.read(read_table(os.path.join(noisy_dir, "wav.scp"))[k])
        assert y.shape == x.shape and np.all(np.isfinite(y)) and np.max(np.abs(y)) > 0
        assert sf.info(d.table("wav.scp")[k]).subtype == "FLOAT"
    # two jobs give the same files as one
    two = str(tmp_path / "two")
    (tmp_path / "k1").write_text("u0\nu1\n")
    (tmp_path / "k2").write_text("u2\nu3\n")
    assert main([*base, "--out_dir", two, "--key_file", str(tmp_path / "k2"), "--job", "2"]) == 0
    assert main([*base, "--out_dir", two, "--key_file", str(tmp_path / "k1"), "--job", "1"]) == 0
    assert main([*base, "--out_dir", two, "--merge", "true"]) == 0
    outs2 = _wavs(two)
    assert all(np.array_equal(outs[k], outs2[k]) for k in outs)
    # another seed gives another output
    three = str(tmp_path / "three")
    assert main([*base[:-4], "--seed", "2", "--progress", "false", "--out_dir", three,
                 "--key_file", str(tmp_path / "k1")]) == 0
    assert not np.array_equal(sf.read(os.path.join(three, "wav", "u0.wav"))[0], outs["u0"])
    # a finished dir returns at once; a changed config is refused
    assert main([*base, "--out_dir", one]) == 0
    assert main([*base, "--out_dir", two.replace("two", "three"), "--method_conf.n_em", "3"]) == 1


def test_resume_skips_done_utterances(model, noisy_dir, tmp_path, capfd):
    conf = _conf(tmp_path, method="udiffse_plus")
    out = str(tmp_path / "out")
    base = ["--config", conf, "--model", model, "--wav_scp", os.path.join(noisy_dir, "wav.scp"),
            "--out_dir", out, "--progress", "false"]
    (tmp_path / "k").write_text("u1\n")
    assert main([*base, "--key_file", str(tmp_path / "k")]) == 0
    first = os.stat(os.path.join(out, "wav", "u1.wav")).st_mtime_ns
    assert main(base) == 0
    assert "1 of 4 utterances already done" in capfd.readouterr().err
    assert os.stat(os.path.join(out, "wav", "u1.wav")).st_mtime_ns == first
    assert main([*base, "--merge", "true"]) == 0  # no utt2spk: written without validation
    timing = json.load(open(os.path.join(out, "timing.json")))
    assert timing["nfe"] == 4 * 2 and timing["method"] == "udiffse_plus"
    assert sorted(read_table(os.path.join(out, "wav.scp"))) == ["u0", "u1", "u2", "u3"]


def test_passthrough_of_silent_and_short_input(model, tmp_path, capfd):
    d = tmp_path / "odd"
    d.mkdir()
    sf.write(str(d / "z.wav"), np.zeros(8000, np.float32), 16000, subtype="FLOAT")
    short = (0.1 * np.sin(np.arange(60) / 3)).astype(np.float32)
    sf.write(str(d / "s.wav"), short, 16000, subtype="FLOAT")
    (d / "wav.scp").write_text(f"s {d / 's.wav'}\nz {d / 'z.wav'}\n")
    out = str(tmp_path / "out")
    args = ["--config", _conf(tmp_path), "--model", model, "--data_dir", str(d), "--out_dir", out,
            "--progress", "false"]
    assert main(args) == 0 and main([*args, "--merge", "true"]) == 0
    err = capfd.readouterr().err
    assert "all-zero input" in err and "shorter than one STFT frame" in err
    outs = _wavs(out)
    assert np.array_equal(outs["z"], np.zeros(8000)) and np.allclose(outs["s"], short)
    assert json.load(open(os.path.join(out, "timing.json")))["passthrough"] == 2


def test_clear_errors(model, noisy_dir, tmp_path, capfd):
    conf = _conf(tmp_path)
    out = str(tmp_path / "o")
    base = ["--config", conf, "--data_dir", noisy_dir, "--progress", "false"]
    # weights of another architecture than the stored config
    obj = torch.load(model, weights_only=False)
    obj["model"]["model_conf"]["nf"] = 16
    wrong = str(tmp_path / "wrong.pt")
    torch.save(obj, wrong)
    assert main([*base, "--model", wrong, "--out_dir", out + "1"]) == 1
    assert "do not fit the architecture" in capfd.readouterr().err
    # a stored config that contradicts its SDE (another convention)
    obj = torch.load(model, weights_only=False)
    obj["model"]["convention"] = "something_else"
    torch.save(obj, wrong)
    assert main([*base, "--model", wrong, "--out_dir", out + "2"]) == 1
    assert "incompatible" in capfd.readouterr().err
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file" * 10)
    assert main([*base, "--model", str(corrupt), "--out_dir", out + "3"]) == 1
    assert "not a readable model file" in capfd.readouterr().err
    assert main([*base, "--model", str(tmp_path / "none.pt"), "--out_dir", out + "4"]) == 1
    assert "train the prior first" in capfd.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "wav.scp").write_text("")
    assert main(["--config", conf, "--model", model, "--data_dir", str(empty), "--out_dir", out + "5"]) == 1
    assert "empty wav.scp" in capfd.readouterr().err
    # NaN weights: the job stops and names the utterance; nothing is written for it
    obj = torch.load(model, weights_only=False)
    for v in obj["state_dict"].values():
        if v.is_floating_point():
            v.fill_(float("nan"))
    torch.save(obj, wrong)
    assert main([*base, "--model", wrong, "--out_dir", out + "6"]) == 1
    assert "utterance 'u0'" in capfd.readouterr().err
    assert not os.path.exists(os.path.join(out + "6", "wav", "u0.wav"))


def test_t60_estimate_of_the_input(model, tmp_path, capfd):
    """--t60_estimate input: utt2t60_est holds avse.dsp.t60_blind's estimate of each input
    (nan for a recording under 0.5 s); the default (method) writes none for udiffse."""
    from avse.dsp.t60_blind import estimate_t60

    d = tmp_path / "rev"
    d.mkdir()
    rng = np.random.default_rng(3)
    n = np.arange(int(0.6 * 16000))
    rir = rng.standard_normal(n.size) * 10.0 ** (-3.0 * n / (0.6 * 16000))   # T60 0.6 s
    x = np.convolve(speechlike(2.0, seed=7), rir)[:32000]
    x = (0.7 * x / np.max(np.abs(x))).astype(np.float32)
    sf.write(str(d / "r.wav"), x, 16000, subtype="FLOAT")
    sf.write(str(d / "s.wav"), x[:4000], 16000, subtype="FLOAT")
    (d / "wav.scp").write_text(f"r {d / 'r.wav'}\ns {d / 's.wav'}\n")
    base = ["--config", _conf(tmp_path), "--model", model, "--data_dir", str(d), "--progress", "false"]
    out = str(tmp_path / "out")
    assert main([*base, "--out_dir", out, "--t60_estimate", "input"]) == 0
    assert main([*base, "--out_dir", out, "--t60_estimate", "input", "--merge", "true"]) == 0
    assert "too short for a blind T60 estimate" in capfd.readouterr().err
    est = read_table(os.path.join(out, "utt2t60_est"))
    assert list(est) == ["r", "s"] and est["s"] == "nan"
    assert float(est["r"]) == pytest.approx(estimate_t60(sf.read(str(d / "r.wav"), dtype="float32")[0], 16000),
                                             abs=1e-4)
    assert 0.3 < float(est["r"]) < 1.2
    plain = str(tmp_path / "plain")
    assert main([*base, "--out_dir", plain]) == 0 and main([*base, "--out_dir", plain, "--merge", "true"]) == 0
    assert not os.path.exists(os.path.join(plain, "utt2t60_est"))
    with pytest.raises(SystemExit):
        main([*base, "--out_dir", str(tmp_path / "bad"), "--t60_estimate", "room"])
