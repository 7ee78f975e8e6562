"""avse.bin.train (stage 4) end to end: outputs, config round trip, clear errors."""
import csv
import os

import pytest
import soundfile as sf
import torch
import yaml

from avse.bin.train import main
from avse.nets.storage import load_model
from testutils import speechlike

SMALL = {"model": "ncsnpp", "model_conf": {"preset": "tiny", "nf": 8, "ch_mult": [1, 2, 2]},
         "frontend_conf": {"n_fft": 126, "hop": 32}, "crop_frames": 32, "batch_size": 2,
         "max_steps": 6, "log_interval": 2, "valid_interval": 3, "ckpt_interval": 4, "num_workers": 1,
         "valid_utts": 2, "progress": False, "optim_conf": {"lr": 1.0e-3}}


def _dir(tmp_path, name, lens):
    d = tmp_path / name
    d.mkdir()
    rows = []
    for i, n in enumerate(lens):
        p = d / f"{name}{i}.wav"
        sf.write(str(p), speechlike(1.0, seed=i)[:n], 16000, subtype="FLOAT")
        rows.append(f"{name}{i} {p}\n")
    (d / "wav.scp").write_text("".join(rows))
    return str(d)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def test_train_cli_writes_everything(tmp_path, capfd):
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(SMALL))
    tr = _dir(tmp_path, "tr", [16000, 12000, 100])  # the last is shorter than one frame (126)
    va = _dir(tmp_path, "va", [16000, 8000])
    out = tmp_path / "exp"
    rc = main(["--config", str(conf), "--train_dir", tr, "--valid_dir", va, "--out_dir", str(out),
               "--seed", "3", "--model_conf.nf", "8"])
    assert rc == 0
    assert "leaving out 1 of 3" in capfd.readouterr().err
    for f in ("config.yaml", "model.pt", "train_log.csv", "loss.png"):
        assert (out / f).is_file(), f
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["seed"] == 3 and cfg["model_conf"]["nf"] == 8 and cfg["max_steps"] == 6
    rows = list(csv.DictReader(open(out / "train_log.csv")))
    assert list(rows[0]) == ["step", "train_loss", "valid_loss", "lr", "grad_norm", "seconds"]
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 6]
    assert [r["step"] for r in rows if r["valid_loss"]] == ["3", "6"]
    assert all(float(r["train_loss"]) > 0 for r in rows)
    assert sorted(os.listdir(out / "checkpoints")) == ["step_00000004.pt", "step_00000006.pt"]
    m = load_model(str(out / "model.pt"))
    assert m.fs == 16000 and m.frontend.n_fft == 126 and m.meta["step"] == 6
    x = torch.zeros(1, 64, 8, dtype=torch.complex64)
    assert m.model(x, torch.tensor([0.5])).shape == (1, 64, 8)
    # the exported weights are the EMA ones, the training checkpoint loads too
    ck = torch.load(out / "checkpoints" / "step_00000006.pt", weights_only=False)
    sd = torch.load(out / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(v, ck["ema"]["module"][k]) for k, v in sd.items())
    assert not all(torch.equal(v, ck["model"][k]) for k, v in sd.items())
    assert load_model(str(out / "checkpoints" / "step_00000006.pt")).meta["step"] == 6
    # a finished run re-run with --resume true does nothing more
    assert main(["--config", str(conf), "--train_dir", tr, "--out_dir", str(out), "--seed", "3",
                 "--valid_dir", va, "--resume", "true"]) == 0
    assert len(list(csv.DictReader(open(out / "train_log.csv")))) == 4


def test_train_cli_errors(tmp_path, capfd):
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(SMALL))
    out = str(tmp_path / "exp")
    assert main(["--config", str(conf), "--train_dir", str(tmp_path / "nope"), "--out_dir", out]) == 1
    assert "run stage 3 first" in capfd.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "wav.scp").write_text("")
    assert main(["--config", str(conf), "--train_dir", str(empty), "--out_dir", out]) == 1
    assert "empty wav.scp" in capfd.readouterr().err
    short = _dir(tmp_path, "short", [100, 120])
    assert main(["--config", str(conf), "--train_dir", short, "--out_dir", out]) == 1
    assert "no utterance is at least" in capfd.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_stepz: 3\n")
    assert main(["--config", str(bad), "--train_dir", short, "--out_dir", out]) == 1
    assert "unknown keys" in capfd.readouterr().err
    tr = _dir(tmp_path, "tr", [16000])
    assert main(["--config", str(conf), "--train_dir", tr, "--out_dir", out, "--ngpu", "2"]) == 1
    assert "CUDA is not available" in capfd.readouterr().err or torch.cuda.is_available()
