"""Lip encoder (resnet_tcn) and the synchrony-contrast pretraining objective."""
import numpy as np
import pytest
import torch

from avse.errors import InputError
from avse.nets.lip_encoder import LIP_MEAN, LIP_STD, build_lip_encoder, normalize_lips
from avse.train.sync import LipSyncModel, load_lip_encoder_weights, save_lip_encoder, sync_infonce

TINY = dict(dim=16, front_channels=4, front_kernel=[3, 3, 3], channels=[8], input_pool=4, tcn_layers=1)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def test_shapes_normalisation_and_missing_frames():
    torch.manual_seed(0)
    enc = build_lip_encoder("resnet_tcn", TINY)
    lips = torch.randint(0, 256, (2, 7, 88, 88), dtype=torch.uint8)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, 2] = False
    out = enc(lips, mask)
    assert out.shape == (2, 7, 16) and torch.isfinite(out).all()
    assert torch.all(out[0, 2] == 0) and out[0, 1].abs().sum() > 0
    # the pixels of a missing frame never reach any output
    other = lips.clone()
    other[0, 2] = 255 - other[0, 2]
    torch.testing.assert_close(enc(other, mask), out, rtol=0, atol=0)
    v = torch.tensor([[[[0.0, 107.355]]]])
    torch.testing.assert_close(normalize_lips(v), torch.tensor([[[[-LIP_MEAN / LIP_STD, 0.0]]]]), atol=1e-4,
                               rtol=0)
    with pytest.raises(InputError, match="expected lips"):
        enc(torch.zeros(2, 7, 64, 64))
    with pytest.raises(InputError, match="unknown option"):
        build_lip_encoder("resnet_tcn", {"depth": 3})


def test_infonce_scores_synchrony():
    """Identical per-frame audio and video embeddings give accuracy 1; video shifted by
    two frames against the audio makes the zero shift wrong."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 30, 8, generator=g)
    loss, acc = sync_infonce(a, a, None, max_shift=4, window=3, temperature=0.05)
    assert float(acc) == 1.0 and float(loss) < 0.2
    late = torch.roll(a, 2, dims=1)
    loss2, acc2 = sync_infonce(late, a, None, max_shift=4, window=3, temperature=0.05)
    assert float(acc2) < 0.2 and float(loss2) > 3.0
    # anchors whose window has a missing frame do not count
    mask = torch.ones(3, 30, dtype=torch.bool)
    mask[:, 10:] = False
    _, acc3 = sync_infonce(late, a, mask, max_shift=4, window=3, temperature=0.05)
    assert float(acc3) < 0.2
    with pytest.raises(InputError, match="too few"):
        sync_infonce(a[:, :8], a[:, :8], None, max_shift=4, window=3)


def _synthetic_batch(rng, B=4, Tc=24, n_freq=32):
    """Mouth brightness and audio energy follow the same random per-frame envelope."""
    env = rng.uniform(0, 1, size=(B, Tc)).astype(np.float32)
    lips = np.full((B, Tc, 88, 88), 120, np.uint8)
    lips[:, :, 35:60, 20:68] = (40 + 180 * env)[:, :, None, None].astype(np.uint8)
    shape = rng.uniform(0.5, 1.5, size=(B, n_freq, 1)).astype(np.float32)
    mag = shape * np.repeat(env, 5, axis=1)[:, None, :] + 0.02 * rng.random((B, n_freq, Tc * 5), dtype=np.float32)
    spec = torch.from_numpy(mag).to(torch.complex64)
    return spec, torch.from_numpy(lips), torch.ones(B, Tc, dtype=torch.bool)


def test_sync_contrast_loss_decreases_on_synthetic_data():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = LipSyncModel(build_lip_encoder("resnet_tcn", TINY), n_freq=32, sync_dim=16, audio_dim=16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses, accs = [], []
    for _ in range(40):
        spec, lips, mask = _synthetic_batch(rng)
        v, a = model(spec, lips, mask)
        loss, acc = sync_infonce(v, a, mask, max_shift=3, window=3, temperature=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        accs.append(float(acc))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), (losses[:5], losses[-5:])
    assert np.mean(accs[-5:]) > 2 * np.mean(accs[:5])


def test_lip_encoder_file_round_trip_and_mismatch(tmp_path):
    torch.manual_seed(0)
    enc = build_lip_encoder("resnet_tcn", TINY)
    path = str(tmp_path / "lip_encoder.pt")
    save_lip_encoder(path, "resnet_tcn", enc, step=3)
    fresh = build_lip_encoder("resnet_tcn", TINY)
    load_lip_encoder_weights(fresh, path, "resnet_tcn")
    assert all(torch.equal(a, b) for a, b in zip(enc.state_dict().values(), fresh.state_dict().values()))
    with pytest.raises(InputError, match="differs from the configured"):
        load_lip_encoder_weights(build_lip_encoder("resnet_tcn", {**TINY, "dim": 8}), path, "resnet_tcn")
    torch.save({"format": "avse.score_model", "state_dict": {}}, str(tmp_path / "model.pt"))
    with pytest.raises(InputError, match="not a lip-encoder file"):
        load_lip_encoder_weights(fresh, str(tmp_path / "model.pt"), "resnet_tcn")
    with pytest.raises(InputError, match="not found"):
        load_lip_encoder_weights(fresh, str(tmp_path / "none.pt"), "resnet_tcn")
    (tmp_path / "cut.pt").write_bytes(open(path, "rb").read()[:100])
    with pytest.raises(InputError, match="cut.pt: not a readable lip-encoder file"):
        load_lip_encoder_weights(fresh, str(tmp_path / "cut.pt"), "resnet_tcn")
