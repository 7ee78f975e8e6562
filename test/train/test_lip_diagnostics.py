"""avse.train.lip_diagnostics: gradient reach, embedding variability, augmentation,
score differences and alignment of an audio-visual prior."""
import numpy as np
import pytest
import soundfile as sf
import torch

from avse.diffusion.sde import SDES
from avse.nets.score_model import ScoreModel
from avse.train import lip_diagnostics as ld
from avse.train.av_dataset import AVCropDataset
from avse.train.visual_aug import VisualAugment
from testutils import speechlike

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread

LIP = {"dim": 16, "front_channels": 4, "front_kernel": [3, 3, 3], "channels": [8], "input_pool": 4,
       "tcn_layers": 1}


def _model(lip=LIP, **extra):
    torch.manual_seed(0)
    return ScoreModel.from_config("ncsnpp", {"preset": "tiny", "nf": 8, "ch_mult": [1, 2, 2],
                                             "fusion": "gated_xattn", "lip_encoder": "resnet_tcn",
                                             "lip_encoder_conf": dict(lip), **extra}, SDES.build("ouve"))


def _batch(Tc=8):
    g = torch.Generator().manual_seed(1)
    x0 = 0.3 * torch.randn(2, 64, 32, dtype=torch.complex64, generator=g)
    lips = torch.randint(0, 256, (2, Tc, 88, 88), generator=g, dtype=torch.uint8)
    cond = {"cond": lips, "cond_mask": torch.ones(2, Tc, dtype=torch.bool), "cond_rel": torch.ones(2, Tc)}
    return x0, cond, torch.tensor([0.3, 0.7]), torch.randn(2, 64, 32, dtype=torch.complex64, generator=g)


def _randomise_fusion(model):
    with torch.no_grad():
        for f in model.backbone.fusions:
            for lin in (f.out_add, f.out_mul):
                lin.weight.normal_(0.0, 0.5)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_grad_norms_zero_init_fusion_blocks_the_lip_encoder():
    model = _model()
    x0, cond, t, z = _batch()
    before = _state(model)
    g = ld.grad_norms(model, model.sde, x0, cond, t, z, batch_size=1)
    assert set(g) == {"lip_encoder", "fusion", "backbone_other"}
    assert g["lip_encoder"]["grad_norm"] == 0.0 and g["lip_encoder"]["param_norm"] > 0
    assert g["fusion"]["grad_norm"] > 0 and g["backbone_other"]["grad_norm"] > 0
    assert sum(r["n_params"] for r in g.values()) == sum(p.numel() for p in model.parameters())
    assert not any(r["frozen"] for r in g.values())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in model.parameters())
    _randomise_fusion(model)
    before = _state(model)
    g2 = ld.grad_norms(model, model.sde, x0, cond, t, z)
    assert g2["lip_encoder"]["grad_norm"] > 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    # the batches add up to the gradient of the whole set
    g3 = ld.grad_norms(model, model.sde, x0, cond, t, z, batch_size=1)
    assert abs(g3["lip_encoder"]["grad_norm"] - g2["lip_encoder"]["grad_norm"]) < 1e-4 * g2["lip_encoder"]["grad_norm"]
    f = ld.findings({"grad_norms": g})
    assert any("no gradient reaches the lip encoder" in s for s in f)


def test_grad_norms_frozen_encoder_and_lip_variance():
    model = _model(lip_variance={"bands": 4, "hidden": 8})
    model.cond_encoder.requires_grad_(False)
    x0, cond, t, z = _batch()
    g = ld.grad_norms(model, model.sde, x0, cond, t, z)
    enc = g["lip_encoder"]
    assert enc["frozen"] and enc["grad_norm"] is None and enc["n_trainable"] == 0 and enc["param_norm"] > 0
    assert not g["lip_variance"]["frozen"] and g["lip_variance"]["grad_norm"] > 0
    assert all(p.grad is None for p in model.parameters())
    assert any("frozen" in s for s in ld.findings({"grad_norms": g}))
    md = ld.format_diagnostics({"grad_norms": g, "embedding": ld.embedding_stats(model, cond),
                                "augmentation": None, "output_differences": [],
                                "alignment": ld.alignment(model, 32, cond["cond_mask"], 125.0), "findings": []})
    assert "| lip_encoder | - |" in md and "frozen |" in md


def test_output_differences_zero_at_init():
    model = _model()
    x0, cond, _, _ = _batch()
    r = ld.output_differences(model, x0, 0.5, cond)
    assert r == {"t": 0.5, "zero": 0.0, "other": 0.0}
    _randomise_fusion(model)
    rows = ld.output_difference_rows(model, model.sde, x0, cond, [0.2, 0.8], batch_size=1)
    assert [r["t"] for r in rows] == [0.2, 0.8]
    assert all(r["zero"] > 0 and r["other"] > 0 for r in rows)


def test_embedding_stats_constant_and_random_lips():
    # a frame-wise encoder (no temporal kernel), so constant lips give constant embeddings
    model = _model(dict(LIP, front_kernel=[1, 3, 3], tcn_kernel=1))
    _, cond, _, _ = _batch(Tc=6)
    const = dict(cond, cond=cond["cond"][:, :1].expand(-1, 6, -1, -1).contiguous())
    c = ld.embedding_stats(model, const)
    r = ld.embedding_stats(model, cond, batch_size=1)
    assert c["crops"] == r["crops"] == 2 and c["dim"] == 16
    assert c["temporal_std"] < 1e-5 and c["static_std"] < 1e-5
    assert r["temporal_std"] > 0.01 and r["mean_norm"] > 0
    assert abs(r["ratio"] - r["temporal_std"] / r["mean_norm"]) < 1e-9
    assert any("hardly vary over time" in s for s in ld.findings({"embedding": c}))
    # missing frames do not count; a crop with < 2 present frames is left out
    m = cond["cond_mask"].clone()
    m[1, 1:] = False
    assert ld.embedding_stats(model, dict(cond, cond_mask=m))["crops"] == 1


def _av_dir(d):
    d.mkdir()
    for i, sec in enumerate([0.6, 0.9]):
        sf.write(str(d / f"u{i}.wav"), speechlike(sec, seed=i), 16000, subtype="FLOAT")
        np.save(d / f"u{i}_lip.npy", np.full((int(np.ceil(sec * 25)), 88, 88), 100 + 20 * i, np.uint8))
    (d / "lip.scp").write_text("".join(f"u{i} {d / f'u{i}_lip.npy'}\n" for i in range(2)))
    return [(f"u{i}", str(d / f"u{i}.wav")) for i in range(2)], {
        f"u{i}": (str(d / f"u{i}_lip.npy"), None) for i in range(2)}


def test_augmentation_stats_and_alignment(tmp_path):
    utts, lips = _av_dir(tmp_path / "av")
    fe = {"n_fft": 126, "hop": 32}
    none = VisualAugment(p_drop_utt=0.0, p_drop_frames=0.0, p_occlude=0.0)
    a = ld.augmentation_stats(AVCropDataset(utts, lips, fe, crop_frames=64, augment=none), 6)
    assert a["draws"] == 6 and a["video_dropped"] == 0.0 and a["present_rel"] == 1.0
    assert a["frames_masked"] == a["frames_masked_raw"] and a["augment"]["p_drop_utt"] == 0.0
    full = ld.augmentation_stats(AVCropDataset(utts, lips, fe, crop_frames=64,
                                               augment=VisualAugment(p_drop_utt=1.0)), 4)
    assert full["video_dropped"] == 1.0 and full["frames_masked"] == 1.0
    assert any("video frames missing" in s for s in ld.findings({"augmentation": full}))
    # hop 32 at 16 kHz: 64 STFT frames = 4 video frames, the fusion assumes 125 STFT frames/s
    model = _model()
    al = ld.alignment(model, 64, torch.ones(1, 4, dtype=torch.bool), 500.0)
    assert al["expected_video_frames"] == pytest.approx(12.8) and al["max_abs_mismatch"] == pytest.approx(8.8)
    assert any("misaligned" in s for s in ld.findings({"alignment": al}))
    ok = ld.alignment(model, 256, torch.ones(1, 52, dtype=torch.bool), 125.0)
    assert ok["max_abs_mismatch"] == pytest.approx(0.8) and not ld.findings({"alignment": ok})
