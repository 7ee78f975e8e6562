"""Supervised lip-encoder pretraining on time-aligned phone labels: phone names,
alignments, per-video-frame labels, viseme classes, labelled AV crops and the loss."""
import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from avse.errors import InputError
from avse.lips.tables import lip_tables
from avse.train.dataset import read_utterances
from avse.train.lip_phones import (SILENCE, LabelledAVCrops, LipPhoneModel, base_phone, frame_labels,
                                   phone_inventory, phone_loss, read_alignment, read_labels, viseme_classes)
from avse.train.visual_aug import VisualAugment

SPF = 640  # samples per video frame at 16 kHz / 25 fps


def test_base_phone_strips_espeak_marks():
    assert base_phone("'a:") == "a:"
    assert base_phone(",i:") == "i:"
    assert base_phone("@2") == "@"
    assert base_phone("I#") == "I"
    assert base_phone("r-") == "r"
    assert base_phone("b") == "b"
    assert base_phone("0") == "0"  # espeak's open back vowel is a digit: kept
    assert base_phone("'0") == "0"
    for pause in ("_", "_:", "", "'"):
        assert base_phone(pause) == SILENCE


def test_read_alignment_inline_and_from_a_file(tmp_path):
    want = [(0.0, 0.12, "_"), (0.12, 0.2, "'a:"), (0.2, 0.31, "b")]
    assert read_alignment("0.00 0.12 _ 0.12 0.2 'a: 0.2 0.31 b") == want
    f = tmp_path / "u0.ali"
    f.write_text("0.00 0.12 _\n0.12 0.2 'a:\n0.2 0.31 b\n")
    assert read_alignment(str(f)) == want
    with pytest.raises(InputError, match=r"'u7'.*bad utt2phones entry"):
        read_alignment("0.0 zero b", key="u7")
    with pytest.raises(InputError, match=r"'u7'.*neither a file nor"):
        read_alignment("0.0 0.1", key="u7")
    # a data dir's table: values inline or file paths; the inventory has silence first
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(InputError, match="utt2phones"):
        read_labels(str(d))
    (d / "utt2phones").write_text(f"u0 {f}\nu1 0.0 0.1 m 0.1 0.3 @2 0.3 0.4 _:\n")
    alis, phones = read_labels(str(d))
    assert alis["u0"] == want and alis["u1"] == [(0.0, 0.1, "m"), (0.1, 0.3, "@2"), (0.3, 0.4, "_:")]
    assert phones == [SILENCE, "@", "a:", "b", "m"] == phone_inventory(alis)
    assert read_labels(str(d), phones=["sil", "b"])[1] == ["sil", "b"]  # the training inventory is kept


def test_frame_labels_at_video_frame_centres():
    index = {SILENCE: 0, "b": 1, "a:": 2, "s": 3}
    ali = [(0.0, 0.09, "b"), (0.15, 0.29, "'a:"), (0.29, 0.33, "zz"), (0.33, 0.37, "_"), (0.41, 0.5, "s")]
    # centres 0.02 0.06 0.10 0.14 0.18 0.22 0.26 0.30 0.34 0.38 0.42 0.46
    lab = frame_labels(ali, 12, index)
    assert lab.dtype == np.int64
    assert lab.tolist() == [1, 1, 0, 0, 2, 2, 2, 0, 0, 0, 3, 3]  # gaps, unknown 'zz' and pauses: 0
    assert frame_labels(ali, 12, {**index, "zz": 4})[7] == 4
    # another frame rate: centres 0.0625 0.1875 0.3125 0.4375 0.5625
    assert frame_labels(ali, 5, index, fps=8).tolist() == [1, 2, 0, 3, 0]
    assert frame_labels(ali, 0, index).shape == (0,)


def test_viseme_classes_merge_what_the_lips_cannot_tell_apart():
    phones = [SILENCE, "@", "a", "b", "f", "k", "m", "p", "v", "g", "i:"]
    vis = viseme_classes(phones)
    assert vis.dtype == np.int64 and vis.shape == (len(phones),)
    c = dict(zip(phones, vis.tolist()))
    assert c[SILENCE] == 0
    assert c["b"] == c["p"] == c["m"] != 0
    assert c["f"] == c["v"] and c["k"] == c["g"]
    assert len({c["@"], c["a"], c["b"], c["f"], c["k"], c["i:"], c[SILENCE]}) == 7
    assert vis.max() == 6  # classes numbered densely in order of first appearance


def _av_dir(tmp_path, n_frames=(40, 9, 12)):
    """Utterances whose lip frame j shows the value j (its time) and a wav.scp."""
    d = tmp_path / "av"
    d.mkdir()
    wav, lip = [], []
    rng = np.random.default_rng(0)
    for i, T in enumerate(n_frames):
        sf.write(str(d / f"u{i}.wav"), (0.1 * rng.standard_normal(T * SPF)).astype(np.float32), 16000,
                 subtype="FLOAT")
        np.save(d / f"u{i}.npy", np.repeat(np.arange(T, dtype=np.uint8)[:, None, None], 88, 1).repeat(88, 2))
        wav.append(f"u{i} {d / f'u{i}.wav'}\n")
        lip.append(f"u{i} {d / f'u{i}.npy'}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "lip.scp").write_text("".join(lip))
    return str(d)


def _alignment(T, seed):
    """Phones of varying length (not on frame boundaries) with gaps, over T video frames."""
    rng = np.random.default_rng(seed)
    names = ["b", "'a:", "m", "s", "_", "@2", "f", "i:"]
    ali, t = [], 0.013
    while t < T / 25:
        d = float(rng.uniform(0.03, 0.11))
        ali.append((round(t, 4), round(t + d, 4), names[int(rng.integers(len(names)))]))
        t += d + (0.05 if rng.random() < 0.2 else 0.0)
    return ali


def test_labelled_crops_line_up_with_the_video_frames(tmp_path):
    d = _av_dir(tmp_path)
    alis = {"u0": _alignment(40, 0), "u1": _alignment(9, 1)}  # u2 unlabelled
    phones = phone_inventory(alis)
    utts = read_utterances(d, 16000, 510)
    ds = LabelledAVCrops(utts, lip_tables(d, "none"), {}, crop_frames=50, alignments=alis, phones=phones)
    assert ds.n_video == 10 and ds.fps == 25.0
    index = {p: i for i, p in enumerate(phones)}

    def at(ali, t):  # the phone class at time t, straight from the alignment
        hit = [index[base_phone(p)] for s, e, p in ali if s <= t < e]
        return hit[-1] if hit else 0

    whole = frame_labels(alis["u0"], 40, index)
    starts = set()
    for seed in range(15):
        item = ds[(0, seed)]
        assert len(item) == 5
        _, lips, mask, _, lab = item
        assert lab.dtype == torch.int64 and lab.shape == (10,) and mask.all()
        k = int(lips[0, 0, 0])  # the crop's first video frame
        starts.add(k)
        assert k * SPF == ds.offset(40 * SPF, seed)
        assert lab.tolist() == whole[k:k + 10].tolist()
        assert lab.tolist() == [at(alis["u0"], (int(lips[j, 0, 0]) + 0.5) / 25) for j in range(10)]
    assert len(starts) > 3 and len(set(whole.tolist())) > 3
    # past the end of a short utterance the video is missing: -1
    _, lips, mask, _, lab = ds[(1, 4)]
    assert mask[:9].all() and not mask[9]
    assert lab[:9].tolist() == frame_labels(alis["u1"], 9, index).tolist() and lab[9] == -1
    # no alignment: every frame unlabelled
    assert ds[(2, 0)][4].tolist() == [-1] * 10
    # frames dropped by the augmentation are unlabelled too
    aug = VisualAugment(p_drop_frames=1.0)
    dsa = LabelledAVCrops(utts, lip_tables(d, "none"), {}, crop_frames=50, augment=aug, alignments=alis,
                          phones=phones)
    dropped = 0
    for seed in range(10):
        _, _, mask, _, lab = dsa[(0, seed)]
        k = ds.offset(40 * SPF, seed) // SPF
        assert torch.all(lab[~mask] == -1)
        assert lab[mask].tolist() == whole[k:k + 10][mask.numpy()].tolist()
        dropped += int((~mask).sum())
    assert dropped > 0


def test_phone_loss_and_accuracies():
    phones = [SILENCE, "a", "b", "m", "p"]
    vis = torch.from_numpy(viseme_classes(phones))
    assert vis.tolist() == [0, 1, 2, 2, 2]
    logits = torch.full((1, 4, 5), -2.0)
    logits[0, 0, 2] = 3.0  # b for b: right
    logits[0, 1, 4] = 3.0  # p for m: wrong phone, right viseme
    logits[0, 2, 1] = 3.0  # unlabelled
    logits[0, 3, 0] = 3.0  # silence for a: wrong
    labels = torch.tensor([[2, 3, -1, 1]])
    loss, acc, vacc = phone_loss(logits, labels, vis)
    valid = [0, 1, 3]
    want = F.cross_entropy(logits[0, valid], labels[0, valid])
    torch.testing.assert_close(loss, want)
    assert acc == pytest.approx(1 / 3) and vacc == pytest.approx(2 / 3)
    # the unlabelled frame does not count
    other = logits.clone()
    other[0, 2] = torch.randn(5) * 10
    loss2, acc2, vacc2 = phone_loss(other, labels, vis)
    torch.testing.assert_close(loss2, loss)
    assert (acc2, vacc2) == (acc, vacc)
    # nothing labelled: zero loss that still backpropagates
    lg = logits.clone().requires_grad_(True)
    z, a, v = phone_loss(lg, torch.full((1, 4), -1), vis)
    z.backward()
    assert float(z.detach()) == 0 and a == v == 0.0 and lg.grad is not None and not lg.grad.any()
    with pytest.raises(InputError, match="do not match"):
        phone_loss(logits, labels[:, :3], vis)


def test_lip_phone_model_shapes(one_thread):
    from avse.nets.lip_encoder import build_lip_encoder

    torch.manual_seed(0)
    enc = build_lip_encoder("resnet_tcn", {"dim": 16, "front_channels": 4, "front_kernel": [3, 3, 3],
                                           "channels": [8], "input_pool": 4, "tcn_layers": 1})
    model = LipPhoneModel(enc, 7)
    lips = torch.randint(0, 255, (2, 6, 88, 88), dtype=torch.uint8)
    out = model(lips, torch.ones(2, 6, dtype=torch.bool))
    assert out.shape == (2, 6, 7)
    torch.testing.assert_close(out, model.head(enc(lips, torch.ones(2, 6, dtype=torch.bool))))
