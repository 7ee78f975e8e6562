"""Real-corpus lip inputs end to end on tiny data: a prior on precomputed visual
features (lip_feats.scp) trained and used for enhancement, and a resnet18_tcn prior
started from a (fake, released-layout) lip-reading checkpoint."""
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from avse.bin.enhance import main as enhance_main
from avse.bin.train import main as train_main
from avse.io.scp import read_table
from avse.nets.storage import load_model
from avse.train.checkpoint import load_last_checkpoint
from fake_lipreading import lrw_state_dict, save_lrw_checkpoint
from testutils import speechlike

SMALL = ["--model_conf", "{preset: tiny, nf: 8, ch_mult: [1, 2, 2]}", "--crop_frames", "64",
         "--frontend_conf", "{n_fft: 126, hop: 32}", "--batch_size", "2", "--num_workers", "0",
         "--progress", "false", "--log_interval", "1", "--valid_interval", "1000", "--ckpt_interval", "1000"]
FEATS = ["--lip_encoder", "features", "--lip_encoder_conf", "{in_dim: 6, dim: 8}", "--lip_rel_source", "none",
         "--model_conf.fusion", "xattn", "--visual_aug", "{p_drop_utt: 0.3, p_drop_frames: 0.3, p_occlude: 0.5}"]
FAST = {"method": "udiffse_plus", "method_conf": {"n_steps": 3, "n_samples": 1, "lik_period": 2, "noise_conf": {"rank": 2}}}

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _write(d, secs, noisy=False):
    """wav.scp, lip.scp (88 x 88 crops) and lip_feats.scp ((T, 6) float16 features at
    25 fps whose first column follows the speech envelope), utt2spk."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rows = {"wav.scp": [], "lip.scp": [], "lip_feats.scp": [], "utt2spk": []}
    for i, sec in enumerate(secs):
        x = speechlike(sec, f0=110 + 25 * i, seed=i)
        if noisy:
            x = x + 0.1 * rng.standard_normal(len(x)).astype(np.float32)
        sf.write(str(d / f"u{i}.wav"), x, 16000, subtype="FLOAT")
        T = int(np.ceil(len(x) * 25 / 16000))
        env = np.array([np.sqrt(np.mean(x[j * 640:(j + 1) * 640] ** 2)) for j in range(T)])
        np.save(d / f"u{i}_lip.npy", np.full((T, 88, 88), 100, np.uint8))
        f = rng.standard_normal((T, 6)).astype(np.float16)
        f[:, 0] = env / env.max()
        np.save(d / f"u{i}_feats.npy", f)
        rows["wav.scp"].append(f"u{i} {d / f'u{i}.wav'}\n")
        rows["lip.scp"].append(f"u{i} {d / f'u{i}_lip.npy'}\n")
        rows["lip_feats.scp"].append(f"u{i} {d / f'u{i}_feats.npy'}\n")
        rows["utt2spk"].append(f"u{i} s{i}\n")
    for name, r in rows.items():
        (d / name).write_text("".join(r))
    return str(d)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("lipinputs")
    return _write(root / "clean", [0.9, 1.1, 1.2]), _write(root / "noisy", [0.7, 0.9], noisy=True)


def test_features_prior_trains_and_enhances(data, tmp_path, capfd):
    clean, noisy = data
    exp = str(tmp_path / "feats")
    assert train_main(["--train_dir", clean, "--valid_dir", clean, "--valid_utts", "2", "--out_dir", exp,
                       "--max_steps", "2", *SMALL, *FEATS]) == 0
    model = os.path.join(exp, "model.pt")
    m = load_model(model)
    assert m.model.config["model_conf"]["lip_encoder"] == "features" and m.model.audio_visual
    conf = tmp_path / "fast.yaml"
    conf.write_text(yaml.safe_dump(FAST))
    base = ["--config", str(conf), "--model", model, "--progress", "false"]
    for deg in ("none", "missing50", "shift3", "shuffle"):
        out = str(tmp_path / f"enh_{deg}")
        assert enhance_main([*base, "--data_dir", noisy, "--out_dir", out, "--lip_degrade", deg]) == 0
        assert enhance_main([*base, "--data_dir", noisy, "--out_dir", out, "--lip_degrade", deg,
                             "--merge", "true"]) == 0
        ys = {k: sf.read(v)[0] for k, v in read_table(os.path.join(out, "wav.scp")).items()}
        assert sorted(ys) == ["u0", "u1"] and all(np.all(np.isfinite(y)) for y in ys.values())
    # the features reach the score: other features, another score
    from avse.nets.lip_cond import LipConditioner
    lc = LipConditioner.for_model(m.model, noisy, None, "none", "none", torch.device("cpu"), False, "none", 0)
    c = lc.conditioning("u0")
    assert c["cond"].shape == (1, 18, 8) and c["cond_mask"].all()
    capfd.readouterr()
    # what does not fit: pixels to occlude, mouth crops, no feature table
    assert enhance_main([*base, "--data_dir", noisy, "--out_dir", str(tmp_path / "x1"), "--lip_degrade",
                         "occlude"]) == 1
    assert "'occlude' paints over mouth pixels" in capfd.readouterr().err
    assert enhance_main([*base, "--data_dir", noisy, "--out_dir", str(tmp_path / "x2"), "--lip_scp",
                         os.path.join(noisy, "lip.scp")]) == 1
    assert "expected (T, D) float visual features" in capfd.readouterr().err
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(os.path.join(noisy, "wav.scp"), bare / "wav.scp")
    assert enhance_main([*base, "--data_dir", str(bare), "--out_dir", str(tmp_path / "x3")]) == 1
    err = capfd.readouterr().err
    assert "lip_feats.scp" in err and "visual features" in err
    # avse-enhance computes lips from video: a features model is refused there
    from avse.bin.enhance_files import main as files_main
    assert files_main(["--model", model, "--method", "udiffse_plus", "--input", os.path.join(noisy, "u0.wav"),
                       "--out_dir", str(tmp_path / "x5"), "--progress", "false"]) == 1
    assert "reads precomputed visual features" in capfd.readouterr().err
    # so is synchrony pretraining (it learns from mouth crops)
    from avse.bin.train_lip_encoder import main as lip_main
    assert lip_main(["--train_dir", clean, "--out_dir", str(tmp_path / "x6"), "--lip_encoder", "features",
                     "--lip_encoder_conf", "{in_dim: 6, dim: 8}", "--progress", "false"]) == 1
    assert "reads precomputed visual features" in capfd.readouterr().err
    # a crop encoder given the feature table (as its lip table) names the mix-up
    assert train_main(["--train_dir", clean, "--out_dir", str(tmp_path / "x4"), "--max_steps", "1", *SMALL,
                       "--lip_encoder", "resnet_tcn", "--lip_encoder_conf", "{dim: 8, channels: [8]}",
                       "--lip_rel_source", "none", "--lip_table", "lip_feats.scp"]) == 1
    assert "lip_encoder: features" in capfd.readouterr().err


def test_features_from_another_table(data, tmp_path):
    """--lip_table names the training's table; stage 5 then reads the same table."""
    clean, noisy = data
    dirs = []
    for d in (clean, noisy):
        dst = tmp_path / os.path.basename(d)
        shutil.copytree(d, dst)
        os.rename(dst / "lip_feats.scp", dst / "avhubert.scp")
        dirs.append(str(dst))
    exp = str(tmp_path / "exp")
    assert train_main(["--train_dir", dirs[0], "--out_dir", exp, "--max_steps", "1", *SMALL, *FEATS,
                       "--lip_table", "avhubert.scp"]) == 0
    conf = tmp_path / "fast.yaml"
    conf.write_text(yaml.safe_dump(FAST))
    args = ["--config", str(conf), "--model", os.path.join(exp, "model.pt"), "--data_dir", dirs[1],
            "--out_dir", str(tmp_path / "enh"), "--progress", "false"]
    assert enhance_main(args) == 0 and enhance_main([*args, "--merge", "true"]) == 0
    assert sorted(read_table(str(tmp_path / "enh" / "wav.scp"))) == ["u0", "u1"]


def test_resnet18_tcn_prior_from_a_lip_reading_checkpoint(data, tmp_path, capfd):
    clean, _ = data
    sd = lrw_state_dict(act="prelu", width=8, hidden=4, kernels=(3, 5), layers=2)
    ckpt = str(tmp_path / "lrw_resnet18_mstcn.pth.tar")
    save_lrw_checkpoint(ckpt, sd)
    exp = str(tmp_path / "exp")
    lip = ["--lip_encoder", "resnet18_tcn", "--lip_encoder_conf",
           "{dim: 16, act: prelu, width: 8, tcn_hidden: 4, tcn_kernels: [3, 5], tcn_layers: 2}",
           "--lip_rel_source", "none", "--model_conf.fusion", "xattn"]
    assert train_main(["--train_dir", clean, "--out_dir", exp, "--max_steps", "2", *SMALL, *lip,
                       "--lip_encoder_init", ckpt, "--freeze_lip_encoder", "true", "--ckpt_interval", "2"]) == 0
    err = capfd.readouterr().err
    assert "initialised from" in err and "lrw_resnet_tcn" in err and "still trained: head.weight" in err
    got = load_last_checkpoint(os.path.join(exp, "checkpoints"))["model"]
    from avse.nets.lip_resnet18 import ResNet18TCNLipEncoder
    for k, v in sd.items():
        if "tcn_output" not in k:
            assert torch.equal(got[f"cond_encoder.{ResNet18TCNLipEncoder.lrw_key(k)}"], v), k
    # the wrong activation is refused before any training
    assert train_main(["--train_dir", clean, "--out_dir", str(tmp_path / "bad"), "--max_steps", "1", *SMALL,
                       *lip[:3], "{dim: 16, width: 8, tcn_hidden: 4, tcn_kernels: [3, 5], tcn_layers: 2}",
                       *lip[4:], "--lip_encoder_init", ckpt]) == 1
    assert "set lip_encoder_conf.act: prelu" in capfd.readouterr().err
