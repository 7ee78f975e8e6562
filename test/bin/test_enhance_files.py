"""avse.bin.enhance_files (avse-enhance): own recordings with a trained (here: untrained tiny) model."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import yaml

from avse.bin.enhance import main as stage5
from avse.bin.enhance_files import main
from avse.bin.pack import pack
from testutils import speechlike, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread
FAST = {"method": "udiffse_plus",
        "method_conf": {"n_steps": 4, "n_samples": 2, "noise": "stationary", "noise_conf": {"domain": "linear"}}}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    conf = d / "enhance_fast.yaml"
    conf.write_text(yaml.safe_dump(FAST))
    return {"ao": tiny_model(str(d / "ao.pt")), "av": tiny_model(str(d / "av.pt"), av=True),
            "vae": tiny_model(str(d / "vae.pt"), vae=True), "conf": str(conf)}


def _noisy(path, seconds, fs=16000, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    x = speechlike(seconds, fs=fs, seed=seed) + 0.05 * rng.standard_normal(int(seconds * fs)).astype(np.float32)
    x = np.stack([x, 0.5 * x], 1) if channels == 2 else x
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, x, fs)
    return path


def test_a_folder_with_nested_files_and_bad_ones(models, tmp_path, capfd):
    d = tmp_path / "in"
    _noisy(str(d / "a.wav"), 1.2)
    _noisy(str(d / "sub" / "b.flac"), 1.5, fs=8000, channels=2, seed=1)
    _noisy(str(d / "sub" / "deep" / "long.wav"), 5.0, channels=2, seed=2)   # 3 chunks of 2 s
    sf.write(str(d / "empty.wav"), np.zeros(0, np.float32), 16000)
    sf.write(str(d / "nan.wav"), np.full(800, np.nan, np.float32), 16000, subtype="FLOAT")
    (d / "sub" / "garbage.wav").write_bytes(b"not a wav file")
    (d / "notes.txt").write_text("not audio\n")
    out = tmp_path / "out"
    rc = main(["--model", models["ao"], "--config", models["conf"], "--input", str(d), "--out_dir", str(out),
               "--chunk", "2", "--overlap", "0.5", "--progress", "false"])
    err = capfd.readouterr().err
    assert rc == 1
    for src, dst in [("a.wav", "a.wav"), ("sub/b.flac", "sub/b.wav"), ("sub/deep/long.wav", "sub/deep/long.wav")]:
        i, o = sf.info(str(d / src)), sf.info(str(out / dst))
        assert (o.samplerate, o.frames, o.channels, o.subtype) == (i.samplerate, i.frames, 1, "FLOAT")
        assert np.all(np.isfinite(sf.read(str(out / dst))[0]))
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "config.yaml", "enhance_files.log", "failed.tsv", "sub"]
    failed = dict(line.split("\t") for line in (out / "failed.tsv").read_text().splitlines())
    assert sorted(failed) == [str(d / "empty.wav"), str(d / "nan.wav"), str(d / "sub" / "garbage.wav")]
    assert "empty audio" in failed[str(d / "empty.wav")] and "NaN or infinite" in failed[str(d / "nan.wav")]
    assert "unreadable audio" in failed[str(d / "sub" / "garbage.wav")]
    assert f"{d / 'sub' / 'b.flac'}: 2 channels mixed down to mono" in err
    assert "long.wav: 5.00 s in 3 chunks" in err
    log = (out / "enhance_files.log").read_text()
    assert "enhanced 3 of 6 files" in log and "3 failed" in log and "nan.wav" in log
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["method"] == "udiffse_plus" and cfg["method_conf"]["n_steps"] == 4 and cfg["method_conf"]["lam"] == 1.5
    assert cfg["chunk"] == 2.0 and cfg["input"] == str(d)


def test_a_short_file_gets_what_stage_5_writes(models, tmp_path):
    """wav.scp input; one chunk: bit-identical to avse.bin.enhance (same seed, key, settings)."""
    scp = tmp_path / "wav.scp"
    scp.write_text(f"utt1 {_noisy(str(tmp_path / 'x.wav'), 1.3)}\n")
    assert main(["--model", models["ao"], "--config", models["conf"], "--input", str(scp),
                 "--out_dir", str(tmp_path / "mine"), "--seed", "7", "--progress", "false"]) == 0
    assert stage5(["--model", models["ao"], "--config", models["conf"], "--wav_scp", str(scp),
                   "--out_dir", str(tmp_path / "s5"), "--seed", "7", "--progress", "false"]) == 0
    np.testing.assert_array_equal(sf.read(str(tmp_path / "mine" / "utt1.wav"))[0],
                                  sf.read(str(tmp_path / "s5" / "wav" / "utt1.wav"))[0])


def test_a_packed_model_needs_nothing_else(models, tmp_path, venv_env):
    """pack -> avse-enhance from another directory, as another process; the packed default
    and --method picking a recorded config or an enhancer."""
    exp = tmp_path / "exp"
    exp.mkdir()
    os.link(models["ao"], exp / "model.pt")
    slow = tmp_path / "enhance_slow.yaml"
    slow.write_text(yaml.safe_dump({**FAST, "method_conf": {**FAST["method_conf"], "n_steps": 5}}))
    packed = str(tmp_path / "packed.tar.gz")
    pack(str(exp), "model.pt", packed, enhance_config=[models["conf"], str(slow)], default_enhance="fast")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _noisy(str(elsewhere / "rec.wav"), 1.0)
    args = [sys.executable, "-m", "avse.bin.enhance_files", "--model", packed, "--input", "rec.wav",
            "--progress", "false"]
    r = subprocess.run(args + ["--out_dir", "o1"], cwd=elsewhere, env=venv_env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sf.info(str(elsewhere / "o1" / "rec.wav")).frames == 16000
    assert yaml.safe_load((elsewhere / "o1" / "config.yaml").read_text())["method_conf"]["n_steps"] == 4
    for method, steps in [("slow", 5), ("enhance_slow", 5), ("udiffse_plus", 30)]:
        assert main(args[3:] + ["--out_dir", str(elsewhere / method), "--input", str(elsewhere / "rec.wav"),
                                "--method", method]) == 0
        assert yaml.safe_load((elsewhere / method / "config.yaml").read_text())["method_conf"]["n_steps"] == steps


def test_audio_visual_lips_chunked_missing_and_as_in_stage_5(models, tmp_path, capfd):
    d, vid = tmp_path / "in", tmp_path / "vid"
    vid.mkdir()
    x = _noisy(str(d / "short.wav"), 1.2)
    _noisy(str(d / "long.wav"), 4.5, seed=3)
    _noisy(str(d / "novideo.wav"), 1.0, seed=4)
    rng = np.random.default_rng(0)
    for name, frames in [("short", 30), ("long", 113)]:
        np.save(vid / f"{name}.npy", rng.integers(0, 255, (frames, 88, 88), dtype=np.uint8))
    out = tmp_path / "out"
    assert main(["--model", models["av"], "--config", models["conf"], "--input", str(d), "--out_dir", str(out),
                 "--video_dir", str(vid), "--chunk", "2", "--overlap", "0.5", "--seed", "3",
                 "--progress", "false"]) == 0
    err = capfd.readouterr().err
    assert "novideo.wav: no video in" in err and "long.wav: 4.50 s in 3 chunks" in err
    for name in ("short", "long", "novideo"):
        assert sf.info(str(out / f"{name}.wav")).frames == sf.info(str(d / f"{name}.wav")).frames
    # one chunk with its lips: what stage 5 writes with the same lips in lip.scp
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "conf.npy", np.ones(30, np.float32))
    (data / "wav.scp").write_text(f"short {x}\n")
    (data / "lip.scp").write_text(f"short {vid / 'short.npy'}\n")
    (data / "lip_conf.scp").write_text(f"short {data / 'conf.npy'}\n")
    assert stage5(["--model", models["av"], "--config", models["conf"], "--data_dir", str(data),
                   "--out_dir", str(tmp_path / "s5"), "--seed", "3", "--progress", "false"]) == 0
    np.testing.assert_array_equal(sf.read(str(out / "short.wav"))[0],
                                  sf.read(str(tmp_path / "s5" / "wav" / "short.wav"))[0])


def test_a_vae_prior_estimates_its_noise_per_chunk(models, tmp_path, capfd):
    rec = _noisy(str(tmp_path / "r.wav"), 3.0, fs=8000)
    out = tmp_path / "o"
    assert main(["--model", models["vae"], "--input", rec, "--out_dir", str(out), "--method", "vae_vem",
                 "--method_conf", "{n_iter: 2}", "--chunk", "1", "--overlap", "0.25", "--progress", "false"]) == 0
    err = capfd.readouterr().err
    assert "method vae_vem, chunks of 1.00 s" in err and "noise PSD of the whole file" not in err
    assert "r.wav -> r.wav: 3.00 s in 4 chunks" in err and sf.info(str(out / "r.wav")).frames == 24000
    assert main(["--model", models["vae"], "--input", rec, "--out_dir", str(out), "--method", "udiffse"]) == 1
    assert "method udiffse needs a score prior" in capfd.readouterr().err


def test_refusals_before_any_file(models, tmp_path, capfd):
    rec = _noisy(str(tmp_path / "r.wav"), 0.5)
    base = ["--input", rec, "--out_dir", str(tmp_path / "o"), "--progress", "false"]
    cases = [(["--model", models["ao"]], "records no default enhancement config; give --method"),
             (["--model", models["ao"], "--config", models["conf"], "--video_dir", str(tmp_path)],
              "an audio-only model takes no video"),
             (["--model", models["ao"], "--method", "dps_informed"], "method dps_informed needs per-utterance tables"),
             (["--model", models["ao"], "--method", "vae_vem"], "method vae_vem needs a vae prior"),
             (["--model", models["ao"], "--method", "nope"], "method 'nope' is not one of"),
             (["--model", models["av"], "--config", models["conf"], "--lip_degrade", "shuffle"],
              "lip_degrade 'shuffle' is a test degradation"),
             (["--model", models["ao"], "--config", models["conf"], "--lip_variance_temper", "1.5"],
              "an audio-only model takes no video; drop --video_dir / --lip_guidance / --lip_variance_temper"),
             (["--model", models["av"], "--config", models["conf"], "--lip_variance_temper", "1.5"],
              "the model has no lip_variance head"),
             (["--model", models["av"], "--config", models["conf"], "--lip_variance_temper", "0"],
              "the model has no lip_variance head")]   # 0 is a weight, not "unset"
    for extra, msg in cases:
        assert main(base + extra) == 1
        assert msg in capfd.readouterr().err, msg
    assert main(["--model", models["ao"], "--config", models["conf"], "--input", str(tmp_path / "none"),
                 "--out_dir", str(tmp_path / "o2")]) == 1
    assert "none: no such file or folder" in (tmp_path / "o2" / "enhance_files.log").read_text()


def test_a_packed_av_method_carries_its_fallback_prior_and_reliability_network(models, tmp_path):
    """A config naming lip_fallback_model and lip_rel_model (with lip_rel_guidance): the pack
    carries both files, and avse-enhance on the pack writes what stage 5 writes with them."""
    import torch

    from avse.lips.reliability import LipRelNet, save_lip_rel

    torch.manual_seed(0)
    rel = str(tmp_path / "lip_rel.pt")
    save_lip_rel(rel, LipRelNet(pool=4, channels=[4, 8], emb=8, temporal=3))
    conf = tmp_path / "enhance_av_rel.yaml"
    conf.write_text(yaml.safe_dump({**FAST, "lip_rel_guidance": True, "lip_fallback_model": models["ao"],
                                    "lip_rel_model": rel}))
    exp = tmp_path / "exp"
    exp.mkdir()
    os.link(models["av"], exp / "model.pt")
    packed = str(tmp_path / "packed.tar.gz")
    man = pack(str(exp), "model.pt", packed, enhance_config=[str(conf)])
    settings = man["enhance"]["configs"]["av_rel"]
    assert settings["lip_fallback_model"].startswith("aux/") and settings["lip_rel_model"].startswith("aux/")
    assert {settings["lip_fallback_model"], settings["lip_rel_model"]} <= set(man["files"])
    os.rename(rel, rel + ".moved")  # the pack must not need the originals
    d, vid, data = tmp_path / "in", tmp_path / "vid", tmp_path / "data"
    vid.mkdir()
    data.mkdir()
    x = _noisy(str(d / "utt.wav"), 1.2, seed=5)
    lips = np.random.default_rng(1).integers(0, 255, (30, 88, 88), dtype=np.uint8)
    lips[10:20] = 0  # a blacked-out stretch: the reliability network scores it, the guidance follows
    np.save(vid / "utt.npy", lips)
    out = tmp_path / "out"
    assert main(["--model", packed, "--input", str(d), "--out_dir", str(out), "--video_dir", str(vid),
                 "--seed", "3", "--progress", "false"]) == 0
    used = yaml.safe_load((out / "config.yaml").read_text())
    assert used["lip_rel_guidance"] is True and used["lip_fallback_model"] == settings["lip_fallback_model"]
    np.save(data / "conf.npy", np.ones(30, np.float32))
    (data / "wav.scp").write_text(f"utt {x}\n")
    (data / "lip.scp").write_text(f"utt {vid / 'utt.npy'}\n")
    (data / "lip_conf.scp").write_text(f"utt {data / 'conf.npy'}\n")
    os.rename(rel + ".moved", rel)
    s5 = ["--model", models["av"], "--config", models["conf"], "--data_dir", str(data), "--seed", "3",
          "--progress", "false", "--lip_rel_model", rel, "--lip_fallback_model", models["ao"]]
    assert stage5(s5 + ["--out_dir", str(tmp_path / "s5"), "--lip_rel_guidance", "true"]) == 0
    assert stage5(s5 + ["--out_dir", str(tmp_path / "s5_plain")]) == 0
    y = sf.read(str(out / "utt.wav"))[0]
    np.testing.assert_array_equal(y, sf.read(str(tmp_path / "s5" / "wav" / "utt.wav"))[0])
    assert not np.allclose(y, sf.read(str(tmp_path / "s5_plain" / "wav" / "utt.wav"))[0])
