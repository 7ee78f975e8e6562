"""avse.train.trainer: the DSM loss goes down, and a stopped-and-resumed run reaches
exactly the weights of an uninterrupted one."""
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from avse.bin.train import main as train_main
from avse.diffusion.sde import OUVE
from avse.train.checkpoint import list_checkpoints, load_last_checkpoint
from avse.train.objectives import dsm_loss
from avse.train.trainer import read_log
from testutils import speechlike

# a small network on a small STFT (F = 64 bins) keeps the tests fast
SMALL = ["--model_conf", "{preset: tiny, nf: 8, ch_mult: [1, 2, 2]}", "--crop_frames", "32",
         "--frontend_conf", "{n_fft: 126, hop: 32}",
         "--batch_size", "2", "--progress", "false", "--log_interval", "1", "--valid_interval", "1000",
         "--ckpt_interval", "1000"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("clean")
    rows = []
    for i in range(4):
        p = d / f"c{i}.wav"
        sf.write(str(p), speechlike(0.6 + 0.2 * i, f0=110 + 30 * i, seed=i), 16000, subtype="FLOAT")
        rows.append(f"c{i} {p}\n")
    (d / "wav.scp").write_text("".join(rows))
    return str(d)


def test_dsm_loss_of_the_exact_score_is_small():
    """For x0 = 0 the exact score is -x/sigma^2 and the loss is 0; a zero score gives 1."""
    sde = OUVE()
    x0 = torch.zeros(3, 4, 8, dtype=torch.complex64)
    t = torch.tensor([0.1, 0.5, 1.0])
    z = torch.randn(3, 4, 8, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))

    def exact(x, tt):
        return -x / sde.marginal(tt)[1].reshape(-1, 1, 1) ** 2

    assert float(dsm_loss(exact, sde, x0, t, z)) < 1e-10
    zero = dsm_loss(lambda x, tt: torch.zeros_like(x), sde, x0, t, z)
    assert float(zero) == pytest.approx(float(z.abs().pow(2).mean()), rel=1e-5)


def test_loss_decreases(clean_dir, tmp_path):
    out = str(tmp_path / "exp")
    assert train_main(["--train_dir", clean_dir, "--out_dir", out, "--max_steps", "150", "--num_workers", "0",
                       "--optim_conf", "{lr: 2.0e-3}", *SMALL]) == 0
    losses = [float(r["train_loss"]) for r in read_log(os.path.join(out, "train_log.csv"))]
    assert len(losses) == 150
    early, late = np.mean(losses[:20]), np.mean(losses[-30:])
    assert late < 0.7 * early, (early, late)


def test_warmup_then_cosine_schedule(clean_dir, tmp_path):
    out = str(tmp_path / "cos")
    assert train_main(["--train_dir", clean_dir, "--out_dir", out, "--max_steps", "6", "--num_workers", "0",
                       "--optim_conf", "{lr: 1.0e-3}", "--warmup_steps", "2", "--lr_schedule", "cosine",
                       "--min_lr_ratio", "0.1", *SMALL]) == 0
    lrs = [float(r["lr"]) for r in read_log(os.path.join(out, "train_log.csv"))]
    # steps 1-2 warm up; steps 3-6 follow the cosine from 1e-3 towards 1e-4
    expected = [5e-4, 1e-3] + [1e-4 + 9e-4 * 0.5 * (1 + np.cos(np.pi * k / 4)) for k in range(4)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-3)


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_exact(clean_dir, tmp_path, workers):
    common = ["--train_dir", clean_dir, "--num_workers", str(workers), "--valid_dir", clean_dir,
              "--valid_utts", "2", *SMALL, "--ckpt_interval", "3"]
    a, b = str(tmp_path / "straight"), str(tmp_path / "resumed")
    assert train_main([*common, "--out_dir", a, "--max_steps", "8"]) == 0
    assert train_main([*common, "--out_dir", b, "--max_steps", "4"]) == 0
    assert list_checkpoints(os.path.join(b, "checkpoints"))[-1][0] == 4
    # without --resume an existing run is not overwritten
    assert train_main([*common, "--out_dir", b, "--max_steps", "8"]) == 1
    assert train_main([*common, "--out_dir", b, "--max_steps", "8", "--resume", "true"]) == 0
    sa = load_last_checkpoint(os.path.join(a, "checkpoints"))
    sb = load_last_checkpoint(os.path.join(b, "checkpoints"))
    assert sa["step"] == sb["step"] == 8
    for part in ("model",):
        for k, v in sa[part].items():
            assert torch.equal(v, sb[part][k]), k
    for k, v in sa["ema"]["module"].items():
        assert torch.equal(v, sb["ema"]["module"][k]), k
    ma = torch.load(os.path.join(a, "model.pt"), weights_only=False)
    mb = torch.load(os.path.join(b, "model.pt"), weights_only=False)
    assert all(torch.equal(v, mb["state_dict"][k]) for k, v in ma["state_dict"].items())
    # the log has one row per step, with the resumed part once
    assert [int(r["step"]) for r in read_log(os.path.join(b, "train_log.csv"))] == list(range(1, 9))
    # a changed architecture refuses to resume
    bad = [*common, "--out_dir", b, "--max_steps", "10", "--resume", "true", "--model_conf.nf", "16"]
    assert train_main(bad) == 1


def test_av_model_gets_the_frame_rates_of_its_training():
    """fusion and lip-variance modules place the video at fs / hop STFT frames/s (not the
    16 kHz / hop 128 default); a rate the config sets is kept."""
    from avse.dsp.stft import SpectralFrontEnd
    from avse.train.objectives import DSMObjective

    def build_model(cfg, sde):
        return DSMObjective({**cfg, "sde": "ouve"}, SpectralFrontEnd(**cfg["frontend_conf"]).hop).build_model()

    lip = {"dim": 16, "front_channels": 4, "front_kernel": [3, 3, 3], "channels": [8], "input_pool": 4,
           "tcn_layers": 1}
    cfg = {"model": "ncsnpp", "model_conf": {"preset": "tiny", "nf": 8, "ch_mult": [1, 2, 2],
                                             "fusion": "xattn", "lip_variance": {"bands": 8}},
           "lip_encoder": "resnet_tcn", "lip_encoder_conf": lip, "fs": 8000,
           "frontend_conf": {"n_fft": 254, "hop": 64}}
    m = build_model(cfg, OUVE())
    assert {f.spec_fps for f in m.backbone.fusions} == {125.0} and m.lip_variance.spec_fps == 125.0
    cfg["frontend_conf"] = {"n_fft": 510, "hop": 128}
    m = build_model(cfg, OUVE())
    assert {f.spec_fps for f in m.backbone.fusions} == {62.5} and m.lip_variance.spec_fps == 62.5
    assert m.config["model_conf"]["fusion_conf"]["spec_fps"] == 62.5
    cfg["model_conf"]["fusion_conf"] = {"spec_fps": 100.0}
    assert {f.spec_fps for f in build_model(cfg, OUVE()).backbone.fusions} == {100.0}
