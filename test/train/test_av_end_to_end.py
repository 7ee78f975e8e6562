"""Audio-visual prior: training (exact resume), AV inference through avse.bin.enhance,
and the clear refusals when an audio-only and an audio-visual model are mixed up."""
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from avse.bin.enhance import main as enhance_main
from avse.bin.train import main as train_main
from avse.bin.train_lip_encoder import main as lip_main
from avse.io.scp import read_table
from avse.train.checkpoint import load_last_checkpoint, load_model
from testutils import speechlike

SMALL = ["--model_conf", "{preset: tiny, nf: 8, ch_mult: [1, 2, 2]}", "--crop_frames", "64",
         "--frontend_conf", "{n_fft: 126, hop: 32}", "--batch_size", "2", "--num_workers", "0",
         "--progress", "false", "--log_interval", "1", "--valid_interval", "1000", "--ckpt_interval", "1000"]
LIP = "{dim: 16, front_channels: 4, front_kernel: [3, 3, 3], channels: [8], input_pool: 4, tcn_layers: 1}"
AV = ["--lip_encoder", "resnet_tcn", "--lip_encoder_conf", LIP, "--model_conf.fusion", "gated_xattn",
      "--visual_aug", "{p_drop_utt: 0.3, p_drop_frames: 0.3, p_occlude: 0.3}"]
FAST = {"method": "udiffse_plus", "method_conf": {"n_steps": 4, "n_samples": 2, "lik_period": 2, "nmf_rank": 2}}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _write_av(d, secs, noisy=False):
    """wav.scp, lip.scp (mouth brightness following the speech envelope), lip_conf.scp."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = {"wav.scp": [], "lip.scp": [], "lip_conf.scp": [], "utt2spk": []}
    for i, sec in enumerate(secs):
        x = speechlike(sec, f0=120 + 20 * i, seed=i)
        if noisy:
            x = x + 0.1 * rng.standard_normal(len(x)).astype(np.float32)
        sf.write(str(d / f"u{i}.wav"), x, 16000, subtype="FLOAT")
        T = int(np.ceil(len(x) * 25 / 16000))
        env = np.array([np.sqrt(np.mean(x[j * 640:(j + 1) * 640] ** 2)) for j in range(T)])
        lips = np.full((T, 88, 88), 110, np.uint8)
        lips[:, 35:60, 20:68] = (30 + 200 * env / env.max())[:, None, None].astype(np.uint8)
        np.save(d / f"u{i}_lip.npy", lips)
        np.save(d / f"u{i}_conf.npy", np.ones(T, np.float32))
        for name, val in (("wav.scp", f"u{i}.wav"), ("lip.scp", f"u{i}_lip.npy"), ("lip_conf.scp", f"u{i}_conf.npy")):
            rows[name].append(f"u{i} {d / val}\n")
        rows["utt2spk"].append(f"u{i} s{i}\n")
    for name, r in rows.items():
        (d / name).write_text("".join(r))
    return str(d)


@pytest.fixture(scope="module")
def av_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("avdata")
    return _write_av(root / "clean", [0.9, 1.1, 1.3]), _write_av(root / "noisy", [0.7, 1.0], noisy=True)


@pytest.fixture(scope="module")
def models(av_data, tmp_path_factory):
    clean, _ = av_data
    root = tmp_path_factory.mktemp("models")
    ao, av = str(root / "ao"), str(root / "av")
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the function-scoped one_thread
    assert train_main(["--train_dir", clean, "--out_dir", ao, "--max_steps", "2", *SMALL]) == 0
    assert train_main(["--train_dir", clean, "--valid_dir", clean, "--valid_utts", "2", "--out_dir", av,
                       "--max_steps", "2", *SMALL, *AV]) == 0
    torch.set_num_threads(n)
    return os.path.join(ao, "model.pt"), os.path.join(av, "model.pt")


def test_av_training_resumes_exactly(av_data, tmp_path):
    clean, _ = av_data
    common = ["--train_dir", clean, *SMALL, *AV, "--ckpt_interval", "2"]
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert train_main([*common, "--out_dir", a, "--max_steps", "4"]) == 0
    assert train_main([*common, "--out_dir", b, "--max_steps", "2"]) == 0
    assert train_main([*common, "--out_dir", b, "--max_steps", "4", "--resume", "true"]) == 0
    sa, sb = (load_last_checkpoint(os.path.join(d, "checkpoints")) for d in (a, b))
    assert sa["step"] == sb["step"] == 4
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    assert any(k.startswith("cond_encoder.") for k in sa["model"])


def test_av_model_file_and_lip_encoder_init(av_data, models, tmp_path, capfd):
    clean, _ = av_data
    ao_model, av_model = models
    m = load_model(av_model)
    assert m.model.audio_visual and m.model.config["model_conf"]["fusion"] == "gated_xattn"
    assert m.model.config["model_conf"]["lip_encoder"] == "resnet_tcn"
    assert not load_model(ao_model).model.audio_visual
    # synchrony pretraining, then a prior initialised from it with the encoder frozen
    lip_dir = str(tmp_path / "lip")
    assert lip_main(["--train_dir", clean, "--out_dir", lip_dir, "--lip_encoder_conf", LIP, "--crop_frames", "400",
                     "--max_shift", "3", "--window", "3", "--batch_size", "2", "--max_steps", "2", "--num_workers",
                     "0", "--frontend_conf", "{n_fft: 126, hop: 32}", "--log_interval", "1",
                     "--progress", "false"]) == 0
    enc_file = os.path.join(lip_dir, "lip_encoder.pt")
    frozen = str(tmp_path / "frozen")
    assert train_main(["--train_dir", clean, "--out_dir", frozen, "--max_steps", "2", *SMALL, *AV,
                       "--lip_encoder_init", enc_file, "--freeze_lip_encoder", "true"]) == 0
    init = torch.load(enc_file, weights_only=False)["state_dict"]
    got = load_last_checkpoint(os.path.join(frozen, "checkpoints"))["model"]
    assert all(torch.equal(v, got[f"cond_encoder.{k}"]) for k, v in init.items())
    # an audio-only score model is no lip-encoder initialisation
    capfd.readouterr()
    assert train_main(["--train_dir", clean, "--out_dir", str(tmp_path / "bad"), "--max_steps", "1", *SMALL,
                       *AV, "--lip_encoder_init", ao_model]) == 1
    assert "not a lip-encoder file" in capfd.readouterr().err


def test_ao_checkpoint_refuses_av_training_and_back(av_data, tmp_path, capfd):
    clean, _ = av_data
    d = str(tmp_path / "ao")
    assert train_main(["--train_dir", clean, "--out_dir", d, "--max_steps", "1", *SMALL, "--ckpt_interval", "1"]) == 0
    capfd.readouterr()
    assert train_main(["--train_dir", clean, "--out_dir", d, "--max_steps", "2", "--resume", "true",
                       *SMALL, *AV]) == 1
    err = capfd.readouterr().err
    assert "cannot resume" in err and "lip_encoder" in err
    d2 = str(tmp_path / "av")
    assert train_main(["--train_dir", clean, "--out_dir", d2, "--max_steps", "1", *SMALL, *AV,
                       "--ckpt_interval", "1"]) == 0
    capfd.readouterr()
    assert train_main(["--train_dir", clean, "--out_dir", d2, "--max_steps", "2", "--resume", "true",
                       *SMALL]) == 1
    err = capfd.readouterr().err
    assert "cannot resume" in err and "lip_encoder" in err


def test_av_enhancement_end_to_end(av_data, models, tmp_path, capfd):
    _, noisy = av_data
    ao_model, av_model = models
    conf = tmp_path / "fast.yaml"
    conf.write_text(yaml.safe_dump(FAST))
    base = ["--config", str(conf), "--data_dir", noisy, "--progress", "false"]
    outs = {}
    for deg in ("none", "missing50", "occlude", "shift3"):
        out = str(tmp_path / f"av_{deg}")
        assert enhance_main([*base, "--model", av_model, "--out_dir", out, "--lip_degrade", deg]) == 0
        assert enhance_main([*base, "--model", av_model, "--out_dir", out, "--lip_degrade", deg,
                             "--merge", "true"]) == 0
        outs[deg] = {k: sf.read(v)[0] for k, v in read_table(os.path.join(out, "wav.scp")).items()}
        assert sorted(outs[deg]) == ["u0", "u1"] and all(np.all(np.isfinite(y)) for y in outs[deg].values())
    assert not np.array_equal(outs["none"]["u0"], outs["missing50"]["u0"])
    # the closure passes the encoded lips with every call, expanded to the batch
    from avse.nets.lip_cond import LipConditioner
    m = load_model(av_model)
    lc = LipConditioner.for_model(m.model, noisy, None, "auto", "conf", torch.device("cpu"), False, "none", 0)
    c = lc.conditioning("u0")
    x = torch.randn(2, 64, 32, dtype=torch.complex64)
    t = torch.tensor([0.5, 0.5])
    with torch.no_grad():
        direct = m.model(x, t, cond=c["cond"].expand(2, -1, -1), cond_mask=c["cond_mask"].expand(2, -1),
                         cond_rel=c["cond_rel"].expand(2, -1))
    torch.testing.assert_close(lc.score_fn("u0")(x, t), direct)
    # a lip-reliability network scores the lips as given to the model (after degradation)
    from avse.lips.reliability import LipRelNet, save_lip_rel
    from avse.train.av_dataset import lip_tables, load_lips
    from avse.train.visual_aug import degrade
    from avse.utils.seeding import stable_hash
    torch.manual_seed(0)
    save_lip_rel(str(tmp_path / "rel.pt"), LipRelNet(pool=4, channels=(4,), emb=8, temporal=1).eval())
    lr = LipConditioner.for_model(m.model, noisy, None, "auto", "conf", torch.device("cpu"), False, "missing50", 3,
                                  rel_model_path=str(tmp_path / "rel.pt"))
    got = lr.conditioning("u1")
    lips, _ = load_lips(*lip_tables(noisy, "none")["u1"])
    rng = np.random.default_rng([3, stable_hash(3, "lip_degrade", "u1")])
    dl, dm, _ = degrade("missing50", lips, np.ones(len(lips), bool), np.ones(len(lips), np.float32), rng)
    want = lr.rel_model(dl) * dm
    np.testing.assert_allclose(got["cond_rel"][0].numpy(), want, rtol=1e-6)
    assert torch.equal(got["cond_mask"][0], torch.from_numpy(dm)) and 0 < want.max() < 1
    # lips for an audio-only model, and an audio-visual model without lips, are refused
    capfd.readouterr()
    assert enhance_main([*base, "--model", ao_model, "--out_dir", str(tmp_path / "x1"),
                         "--lip_scp", os.path.join(noisy, "lip.scp")]) == 1
    assert "audio-only model" in capfd.readouterr().err
    nolips = tmp_path / "nolips"
    nolips.mkdir()
    (nolips / "wav.scp").write_text(open(os.path.join(noisy, "wav.scp")).read())
    assert enhance_main([*base[:2], "--data_dir", str(nolips), "--progress", "false", "--model", av_model,
                         "--out_dir", str(tmp_path / "x2")]) == 1
    err = capfd.readouterr().err
    assert "audio-visual model" in err and "lip.scp" in err
    # an audio-only model ignores the lips of a data dir unless asked for them
    assert enhance_main([*base, "--model", ao_model, "--out_dir", str(tmp_path / "ao")]) == 0


def test_lip_usage_cli(av_data, models, tmp_path, capfd):
    from avse.bin.lip_usage import main as usage_main

    clean, _ = av_data
    ao, av = models
    out = tmp_path / "usage"
    assert usage_main(["--model", av, "--data_dir", clean, "--n_crops", "3", "--times", "0.2", "0.8",
                       "--out_dir", str(out)]) == 0
    rows = json.loads((out / "lip_usage.json").read_text())["rows"]
    assert [r["t"] for r in rows] == [0.2, 0.8]
    assert all(np.isfinite([r[k] for k in ("true", "missing", "other")]).all() for r in rows)
    assert (out / "lip_usage.md").read_text().count("\n") == 4 and (out / "config.yaml").is_file()
    assert "content gain" in capfd.readouterr().out
    assert usage_main(["--model", ao, "--data_dir", clean]) == 1
    assert "not an audio-visual prior" in capfd.readouterr().err


def test_av_prior_from_the_audio_only_prior_with_frozen_audio(av_data, models, tmp_path, capfd):
    """--init_model starts the audio part from the AO prior; --freeze_audio keeps it and
    trains only the lip encoder and the fusion modules (zero-initialised outputs)."""
    clean, _ = av_data
    ao, _ = models
    out = str(tmp_path / "adapt")
    assert train_main(["--train_dir", clean, "--out_dir", out, "--max_steps", "2", *SMALL, *AV,
                       "--init_model", ao, "--freeze_audio", "true"]) == 0
    assert f"from {ao}; new: backbone.fusions, cond_encoder" in capfd.readouterr().err
    av_sd = load_model(os.path.join(out, "model.pt")).model.state_dict()
    ao_sd = load_model(ao).model.state_dict()
    for k, v in ao_sd.items():
        torch.testing.assert_close(av_sd[k], v, rtol=1e-6, atol=1e-7)
    moved = [k for k in av_sd if k.startswith("backbone.fusions.") and k.endswith("out_add.weight")]
    assert moved and any(float(av_sd[k].abs().max()) > 0 for k in moved)
    assert train_main(["--train_dir", clean, "--out_dir", str(tmp_path / "x"), "--max_steps", "1", *SMALL,
                       *AV, "--freeze_audio", "true"]) == 1
    assert "--freeze_audio needs --lip_encoder and --init_model" in capfd.readouterr().err
    wrong = [a if a != "{n_fft: 126, hop: 32}" else "{n_fft: 254, hop: 64}" for a in SMALL]
    assert train_main(["--train_dir", clean, "--out_dir", str(tmp_path / "y"), "--max_steps", "1", *wrong,
                       *AV, "--init_model", ao]) == 1
    assert "front-end or SDE differs" in capfd.readouterr().err
