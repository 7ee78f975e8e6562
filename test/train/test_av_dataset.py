"""AV training crops (audio and lips of the same time), visual corruption and degradations."""
import numpy as np
import pytest
import soundfile as sf
import torch

from avse.errors import InputError
from avse.lips.tables import lip_tables
from avse.train.av_dataset import AVCropDataset
from avse.train.dataset import read_utterances
from avse.train.visual_aug import VisualAugment

SPF = 640  # samples per video frame at 16 kHz / 25 fps


def _av_dir(tmp_path, n_frames=(40, 9), with_lips=(True, True)):
    """Utterances whose audio amplitude is constant over each video frame and whose lip
    frames carry that frame's index: both identify the time."""
    d = tmp_path / "av"
    (d / "lips").mkdir(parents=True)
    wav, lip, conf = [], [], []
    rng = np.random.default_rng(0)
    for i, T in enumerate(n_frames):
        amp = 0.05 + 0.9 * np.arange(T) / T  # distinct per frame
        x = (np.repeat(amp, SPF) * rng.choice([-1.0, 1.0], T * SPF)).astype(np.float32)
        sf.write(str(d / f"u{i}.wav"), x, 16000, subtype="FLOAT")
        wav.append(f"u{i} {d / f'u{i}.wav'}\n")
        if with_lips[i]:
            frames = np.repeat(np.arange(T, dtype=np.uint8)[:, None, None], 88, 1).repeat(88, 2)
            np.save(d / "lips" / f"u{i}.npy", frames)
            np.save(d / "lips" / f"u{i}_c.npy", np.linspace(0.2, 1.0, T).astype(np.float32))
            lip.append(f"u{i} {d / 'lips' / f'u{i}.npy'}\n")
            conf.append(f"u{i} {d / 'lips' / f'u{i}_c.npy'}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "lip.scp").write_text("".join(lip))
    (d / "lip_conf.scp").write_text("".join(conf))
    return str(d)


def test_audio_and_lip_crops_refer_to_the_same_time(tmp_path):
    d = _av_dir(tmp_path)
    ds = AVCropDataset(read_utterances(d, 16000, 510), lip_tables(d, "conf"), {}, crop_frames=50)
    assert ds.n_video == 10 and ds.crop_samples == 49 * 128
    x_full = ds._full(0)
    for seed in range(12):
        spec, lips, mask, rel = ds[(0, seed)]
        assert spec.shape == (256, 50) and lips.shape == (10, 88, 88) and lips.dtype == torch.uint8
        off = ds.offset(len(x_full), seed)
        assert off % SPF == 0
        k = off // SPF
        wav = ds.waveform(0, seed)
        # video frame j of the crop shows frame k + j, and the crop's samples
        # [640 j, 640 (j + 1)) have that frame's amplitude
        for j in range(9):
            assert int(lips[j, 0, 0]) == k + j
            seg = np.abs(wav[j * SPF:(j + 1) * SPF])
            assert np.allclose(seg, np.abs(x_full[(k + j) * SPF]), atol=1e-6)
        assert mask.all() and torch.allclose(rel, torch.linspace(0.2, 1.0, 40)[k:k + 10])
    assert len({ds.offset(len(x_full), s) for s in range(12)}) > 3  # offsets vary


def test_short_utterances_and_missing_lips_are_missing_frames(tmp_path):
    d = _av_dir(tmp_path, n_frames=(40, 9), with_lips=(True, False))
    with pytest.raises(InputError, match="lip_rel.scp"):
        lip_tables(d, "rel")
    ds = AVCropDataset(read_utterances(d, 16000, 510), lip_tables(d, "none"), {}, crop_frames=50)
    _, lips, mask, rel = ds[(1, 3)]  # no lips for u1
    assert not mask.any() and not rel.any() and not lips.any()
    short = AVCropDataset(read_utterances(d, 16000, 510), lip_tables(d, "none"), {}, crop_frames=400)
    _, lips, mask, rel = short[(0, 1)]  # 40 frames of video, crop of 80
    assert mask[:40].all() and not mask[40:].any() and torch.all(rel[:40] == 1)
    # any hop (the fusions align by time); the crops start on whole-sample video frames
    odd = AVCropDataset(read_utterances(d, 16000, 510), lip_tables(d, "none"), {"hop": 96}, crop_frames=50)
    assert odd[(0, 1)][1].shape[0] == 8  # 50 frames x 96 samples = 7.5 video frames of 640
    with pytest.raises(InputError, match="whole number"):
        AVCropDataset(read_utterances(d, 16000, 510), {}, {}, crop_frames=50, fps=24.0)


def test_augmentation_is_deterministic_in_the_crop_seed(tmp_path):
    d = _av_dir(tmp_path)
    aug = VisualAugment(p_drop_utt=0.3, p_drop_frames=0.5, p_occlude=0.5)
    ds = AVCropDataset(read_utterances(d, 16000, 510), lip_tables(d, "conf"), {}, crop_frames=100, augment=aug)
    a, b = ds[(0, 11)], ds[(0, 11)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    kinds = set()
    for s in range(40):
        _, lips, mask, rel = ds[(0, s)]
        assert torch.all(rel[~mask] == 0)
        kinds.add("drop_utt" if not mask.any() else "drop" if not mask.all() else "full")
    assert kinds == {"drop_utt", "drop", "full"}
    none = VisualAugment(p_drop_utt=1.0)
    lips = np.zeros((5, 88, 88), np.uint8)
    _, m, r = none(lips, np.ones(5, bool), np.ones(5, np.float32), np.random.default_rng(0))
    assert not m.any() and not r.any()
    with pytest.raises(InputError, match="p_occlude"):
        VisualAugment(p_occlude=1.5)


def _features_dir(tmp_path, d, rate=1.0, dim=6, dtype=np.float16):
    """lip_feats.scp next to the crops of ``_av_dir``: (T, dim) features whose first
    column is the video-frame index (at ``rate`` times the video frame rate)."""
    rows = []
    for i, T in enumerate((40, 9)):
        n = int(round(T * rate))
        f = np.zeros((n, dim), dtype)
        f[:, 0] = np.arange(n)
        np.save(tmp_path / f"f{i}.npy", f)
        rows.append(f"u{i} {tmp_path / f'f{i}.npy'}\n")
    (tmp_path / "av" / "lip_feats.scp").write_text("".join(rows))
    return lip_tables(d, "none", str(tmp_path / "av" / "lip_feats.scp"))


def test_feature_crops_refer_to_the_same_time_and_are_checked(tmp_path):
    d = _av_dir(tmp_path)
    feats = _features_dir(tmp_path, d)
    aug = VisualAugment(p_drop_utt=0, p_drop_frames=0.5, p_occlude=1.0)
    ds = AVCropDataset(read_utterances(d, 16000, 510), feats, {}, crop_frames=50, visual="features", feat_dim=6,
                       augment=aug)
    for seed in range(6):
        spec, f, mask, rel = ds[(0, seed)]
        k = ds.offset(len(ds._full(0)), seed) // SPF
        assert f.shape == (10, 6) and f.dtype == torch.float32
        # occlusion needs pixels: the features are the stored ones on every frame, some dropped
        assert torch.equal(f[:, 0], torch.arange(k, k + 10, dtype=torch.float32))
    assert not ds[(1, 0)][2][9:].any()  # the 9-frame utterance: frames past its end are missing
    # crops where features are expected and the other way round, another size, another rate
    with pytest.raises(InputError, match=r"expected \(T, D\) float visual features.*mouth crops\?"):
        AVCropDataset(read_utterances(d, 16000, 510), lip_tables(d, "none"), {}, crop_frames=50,
                      visual="features", feat_dim=6)[(0, 0)]
    with pytest.raises(InputError, match=r"expected \(T, H, W\) uint8 lips.*lip_encoder: features"):
        AVCropDataset(read_utterances(d, 16000, 510), feats, {}, crop_frames=50)[(0, 0)]
    with pytest.raises(InputError, match="lip_encoder_conf.in_dim is 8"):
        AVCropDataset(read_utterances(d, 16000, 510), feats, {}, crop_frames=50, visual="features",
                      feat_dim=8)[(0, 0)]
    fast = _features_dir(tmp_path, d, rate=2.0)
    with pytest.raises(InputError, match="80 feature frames.*video frame rate"):
        AVCropDataset(read_utterances(d, 16000, 510), fast, {}, crop_frames=50, visual="features",
                      feat_dim=6)[(0, 0)]
