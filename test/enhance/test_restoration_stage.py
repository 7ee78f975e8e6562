"""Stage 5/6 integration of the restoration methods: avse.bin.enhance with per-utterance
inputs (rir1.scp), K-source outputs (spk<k>.scp), utt2t60_est, and avse.bin.score's
automatic permutation-invariant scoring of them."""
import json
import os

import numpy as np
import pytest
import soundfile as sf
import yaml

from avse.bin import score
from avse.bin.enhance import main
from avse.bin.train import main as train_main
from avse.io.scp import read_table
from testutils import speechlike

FS = 16000


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("prior")
    p = d / "c.wav"
    sf.write(str(p), speechlike(1.0, seed=5), FS, subtype="FLOAT")
    (d / "wav.scp").write_text(f"c {p}\n")
    out = d / "exp"
    assert train_main(["--train_dir", str(d), "--out_dir", str(out), "--max_steps", "2",
                       "--model_conf", "{preset: tiny, nf: 8, ch_mult: [1, 2, 2]}", "--crop_frames", "16",
                       "--frontend_conf", "{n_fft: 126, hop: 32}", "--batch_size", "2", "--num_workers", "0",
                       "--progress", "false"]) == 0
    return str(out / "model.pt")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two reverberant two-speaker utterances with rir1.scp, spk1.scp and spk2.scp."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    tabs = {n: [] for n in ("wav.scp", "spk1.scp", "spk2.scp", "rir1.scp", "utt2t60", "utt2spk")}
    for i, sec in enumerate([0.5, 0.6]):
        a, b = speechlike(sec, seed=i, f0=110.0), speechlike(sec, seed=10 + i, f0=200.0)
        h = np.zeros(2000, dtype=np.float32)
        h[5] = 0.8
        h[6:] = 0.02 * rng.standard_normal(1994) * np.exp(-np.arange(1994) / 800.0)
        mix = np.convolve(a + b, h)[:a.size].astype(np.float32)
        for name, sig in (("wav", mix), ("s1", a), ("s2", b)):
            sf.write(str(d / f"u{i}_{name}.wav"), sig, FS, subtype="FLOAT")
        np.save(d / f"u{i}_rir.npy", h[None])
        for tab, f in (("wav.scp", "wav"), ("spk1.scp", "s1"), ("spk2.scp", "s2")):
            tabs[tab].append(f"u{i} {d / f'u{i}_{f}.wav'}\n")
        tabs["rir1.scp"].append(f"u{i} {d / f'u{i}_rir.npy'}\n")
        tabs["utt2t60"].append(f"u{i} 0.3\n")
        tabs["utt2spk"].append(f"u{i} u{i}\n")
    for name, rows in tabs.items():
        (d / name).write_text("".join(rows))
    return str(d)


def _conf(tmp_path, method, **kw):
    p = tmp_path / f"{method}.yaml"
    p.write_text(yaml.safe_dump({"method": method, "method_conf": {"n_steps": 3, "n_corrector": 0, **kw}}))
    return str(p)


def _enhance(model, data_dir, out, conf):
    base = ["--config", conf, "--model", model, "--data_dir", data_dir, "--out_dir", out,
            "--progress", "false"]
    assert main(base) == 0
    assert main([*base, "--merge", "true"]) == 0


def test_informed_and_blind_dereverberation_stage(model, data, tmp_path, capfd):
    out = str(tmp_path / "inf")
    _enhance(model, data, out, _conf(tmp_path, "dps_informed"))
    wavs = read_table(os.path.join(out, "wav.scp"))
    assert sorted(wavs) == ["u0", "u1"]
    y, _ = sf.read(wavs["u1"])
    assert y.shape == (int(0.6 * FS),) and np.all(np.isfinite(y))
    assert json.load(open(os.path.join(out, "timing.json")))["method"] == "dps_informed"
    # without rir1.scp: the error names the missing table
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "wav.scp").write_text(open(os.path.join(data, "wav.scp")).read())
    assert main(["--config", _conf(tmp_path, "dps_informed"), "--model", model, "--data_dir", str(bare),
                 "--out_dir", str(tmp_path / "x"), "--progress", "false"]) == 1
    assert "needs rir1.scp" in capfd.readouterr().err
    out = str(tmp_path / "blind")
    _enhance(model, data, out, _conf(tmp_path, "buddy", room_updates=2))
    t60 = {k: float(v) for k, v in read_table(os.path.join(out, "utt2t60_est")).items()}
    assert sorted(t60) == ["u0", "u1"] and all(0.05 <= v <= 2.0 for v in t60.values())
    # scoring reports the relative T60 error against the data dir's utt2t60 (0.3 s)
    sc = tmp_path / "score_blind"
    assert score.main(["--ref_scp", os.path.join(data, "spk1.scp"), "--inf_scp", os.path.join(out, "wav.scp"),
                       "--out_dir", str(sc), "--metrics", "si_sdr", "--data_dir", data, "--pit", "off"]) == 0
    err = {k: float(v) for k, v in read_table(str(sc / "t60_rel_err")).items()}
    assert err == pytest.approx({k: abs(v - 0.3) / 0.3 for k, v in t60.items()}, abs=1e-3)
    assert json.load(open(sc / "summary.json"))["t60_rel_err"] == pytest.approx(float(np.median(list(err.values()))), abs=1e-3)
    # an utterance without an estimate (nan) is left out of the T60 error, with a warning
    with open(os.path.join(out, "utt2t60_est"), "w") as f:
        f.write(f"u0 {t60['u0']:.4f}\nu1 nan\n")
    sc2 = tmp_path / "score_nan"
    assert score.main(["--ref_scp", os.path.join(data, "spk1.scp"), "--inf_scp", os.path.join(out, "wav.scp"),
                       "--out_dir", str(sc2), "--metrics", "si_sdr", "--data_dir", data, "--pit", "off"]) == 0
    assert list(read_table(str(sc2 / "t60_rel_err"))) == ["u0"]
    assert "no T60 estimate (nan) for 1 of 2 utterances" in capfd.readouterr().err


def test_separation_outputs_are_scored_with_pit(model, data, tmp_path):
    out = str(tmp_path / "sep")
    _enhance(model, data, out, _conf(tmp_path, "separate", guidance=["dps", "projection"]))
    s1, s2 = (read_table(os.path.join(out, f"spk{k}.scp")) for k in (1, 2))
    assert s1["u0"].endswith("u0_s1.wav") and s2["u0"].endswith("u0_s2.wav")
    assert read_table(os.path.join(out, "wav.scp")) == s1
    a, b = sf.read(s1["u1"])[0], sf.read(s2["u1"])[0]
    mix = sf.read(read_table(os.path.join(data, "wav.scp"))["u1"])[0]
    assert a.shape == b.shape == mix.shape and not np.allclose(a, b)
    # stage 6 as the recipe calls it (one spk1 reference): PIT over both sources
    sc = tmp_path / "score"
    assert score.main(["--ref_scp", os.path.join(data, "spk1.scp"), "--inf_scp", os.path.join(out, "wav.scp"),
                       "--data_dir", data, "--out_dir", str(sc), "--metrics", "si_sdr"]) == 0
    meta = json.load(open(sc / "meta.json"))
    assert meta["n_sources"] == 2 and meta["mix_scp"].endswith("wav.scp")
    assert meta["inf_scp"][1].endswith(os.path.join("sep", "spk2.scp"))
    assert set(read_table(str(sc / "perm"))) == {"u0", "u1"}
    summ = json.load(open(sc / "summary.json"))
    assert summ["si_sdri"] is not None and summ["n_utts"] == 2
    # one-output systems (the unprocessed mixture) stay scored against spk1; PIT opt-out
    assert score.main(["--ref_scp", os.path.join(data, "spk1.scp"), "--inf_scp", os.path.join(data, "wav.scp"),
                       "--data_dir", data, "--out_dir", str(tmp_path / "noisy"), "--metrics", "si_sdr"]) == 0
    assert json.load(open(tmp_path / "noisy" / "meta.json"))["n_sources"] == 1
    # WHAMR!-style dry references named dereverb<k>.scp
    os.symlink(os.path.join(data, "wav.scp"), tmp_path / "wav.scp")
    for k in (1, 2):
        os.symlink(os.path.join(data, f"spk{k}.scp"), tmp_path / f"dereverb{k}.scp")
    assert score.main(["--ref_scp", str(tmp_path / "dereverb1.scp"), "--inf_scp", os.path.join(out, "wav.scp"),
                       "--data_dir", str(tmp_path), "--out_dir", str(tmp_path / "dry"), "--metrics", "si_sdr"]) == 0
    meta = json.load(open(tmp_path / "dry" / "meta.json"))
    assert meta["n_sources"] == 2 and meta["ref_scp"][1].endswith("dereverb2.scp")
    assert score.main(["--ref_scp", os.path.join(data, "spk1.scp"), "--inf_scp", os.path.join(out, "wav.scp"),
                       "--data_dir", data, "--out_dir", str(tmp_path / "off"), "--metrics", "si_sdr",
                       "--pit", "off"]) == 0
    assert json.load(open(tmp_path / "off" / "meta.json"))["n_sources"] == 1


def test_oracle_noise_stage_reads_the_mixture_and_its_noise(model, data, tmp_path, capfd):
    """``oracle_noise`` then ``wpe`` through avse.bin.enhance: wav.scp and noise1.scp come
    as per-utterance inputs; the output is closer to the speech than the mixture; UDiffSE+
    with ``noise: oracle`` gets them too; a data dir without noise1.scp is an error naming it."""
    d = tmp_path / "noisy"
    d.mkdir()
    rng = np.random.default_rng(3)
    rows = {"wav.scp": [], "noise1.scp": [], "spk1.scp": []}
    for k, p in sorted(read_table(os.path.join(data, "spk1.scp")).items()):
        s, _ = sf.read(p)
        n = (0.5 * np.sqrt(np.mean(s ** 2)) * rng.standard_normal(s.size)).astype(np.float32)
        for name, sig in (("mix", s + n), ("n", n)):
            sf.write(str(d / f"{k}_{name}.wav"), sig, FS, subtype="FLOAT")
        rows["wav.scp"].append(f"{k} {d / f'{k}_mix.wav'}\n")
        rows["noise1.scp"].append(f"{k} {d / f'{k}_n.wav'}\n")
        rows["spk1.scp"].append(f"{k} {p}\n")
    for name, r in rows.items():
        (d / name).write_text("".join(r))
    conf = tmp_path / "oracle.yaml"
    conf.write_text(yaml.safe_dump({"method": "cascade", "method_conf": {"steps": [
        {"method": "oracle_noise", "method_conf": {"gain": "wiener"}},
        {"method": "wpe", "method_conf": {"taps": 4, "delay": 4}}]}}))
    out = str(tmp_path / "oracle")
    _enhance(model, str(d), out, str(conf))
    sc = tmp_path / "score_oracle"
    assert score.main(["--ref_scp", str(d / "spk1.scp"), "--inf_scp", os.path.join(out, "wav.scp"),
                       "--mix_scp", str(d / "wav.scp"), "--out_dir", str(sc), "--metrics", "si_sdr"]) == 0
    gain = json.load(open(sc / "summary.json"))["si_sdri"]
    assert gain > 3.0   # measured: 4.75 dB at this 6 dB SNR
    # the same noise as the noise model of a diffusion enhancer (noise: oracle)
    out = str(tmp_path / "oracle_model")
    _enhance(model, str(d), out, _conf(tmp_path, "udiffse_plus", noise="oracle"))
    y, _ = sf.read(read_table(os.path.join(out, "wav.scp"))["u0"])
    assert y.shape == (int(0.5 * FS),) and np.all(np.isfinite(y))
    (d / "noise1.scp").unlink()
    assert main(["--config", str(conf), "--model", model, "--data_dir", str(d),
                 "--out_dir", str(tmp_path / "x"), "--progress", "false"]) == 1
    assert "needs noise1.scp" in capfd.readouterr().err
