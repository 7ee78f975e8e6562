"""xattn / gated_xattn fusion: identity at init, masking, locality, reliability gate."""
import pytest
import torch

from avse.nets import FUSIONS, NCSNpp


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _randomize(module, std=0.5):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "rel_bias" not in name:
                p.normal_(0, std)


@pytest.mark.parametrize("kind", ["xattn", "gated_xattn"])
def test_shapes_and_identity_at_init(kind):
    torch.manual_seed(0)
    fus = FUSIONS.build(kind, channels=8, cond_dim=6, time_stride=2, level=1)
    h = torch.randn(2, 8, 16, 40)
    cond = torch.randn(2, 9, 6)
    out = fus(h, cond, torch.ones(2, 9, dtype=torch.bool), torch.rand(2, 9))
    assert out.shape == h.shape and torch.equal(out, h)  # zero-initialised output maps
    _randomize(fus)
    assert not torch.allclose(fus(h, cond, None), h)


@pytest.mark.parametrize("kind", ["xattn", "gated_xattn"])
def test_missing_frames_contribute_nothing(kind):
    torch.manual_seed(1)
    fus = FUSIONS.build(kind, channels=8, cond_dim=4, time_stride=1)
    _randomize(fus)
    h, cond = torch.randn(1, 8, 4, 60), torch.randn(1, 12, 4)
    mask = torch.ones(1, 12, dtype=torch.bool)
    mask[:, 3:6] = False
    other = cond.clone()
    other[:, 3:6] = 1e4
    rel = torch.rand(1, 12)
    a, b = fus(h, cond, mask, rel), fus(h, other, mask, rel)
    assert torch.equal(a, b)
    assert not torch.equal(a, fus(h, other, torch.ones_like(mask), rel))
    # no video at all: h exactly (no bias term leaks in)
    assert torch.equal(fus(h, cond, torch.zeros_like(mask), rel), h)


def test_attention_is_local_in_time():
    """A video frame only reaches spectrogram frames within the attention window."""
    torch.manual_seed(2)
    fus = FUSIONS.build("xattn", channels=8, cond_dim=4, time_stride=1, window=1)
    _randomize(fus)
    h, cond = torch.randn(1, 8, 4, 100), torch.randn(1, 20, 4)
    changed = cond.clone()
    changed[:, 10] += 3.0
    diff = (fus(h, cond) - fus(h, changed)).abs().amax(dim=(0, 1, 2))  # (T,)
    touched = torch.nonzero(diff > 0).flatten()
    # video frame 10 is centred on STFT frame 52.5; window 1 reaches frames whose nearest
    # video frame is 9..11, i.e. STFT frames 45..59
    assert touched.min() >= 45 and touched.max() <= 59 and len(touched) > 5


def test_gate_zero_equals_audio_only_network():
    torch.manual_seed(3)
    m = NCSNpp("tiny", nf=8, cond_dim=4, fusion="gated_xattn").eval()
    _randomize(m.fusions)
    x, t = torch.randn(2, 2, 256, 32), torch.rand(2)
    cond, mask = torch.randn(2, 7, 4), torch.ones(2, 7, dtype=torch.bool)
    with torch.no_grad():
        ao = m(x, t)
        r0 = m(x, t, cond=cond, cond_mask=mask, cond_rel=torch.zeros(2, 7))
        r1 = m(x, t, cond=cond, cond_mask=mask, cond_rel=torch.ones(2, 7))
        half = m(x, t, cond=cond, cond_mask=mask, cond_rel=torch.full((2, 7), 0.5))
    assert torch.equal(r0, ao)
    assert not torch.allclose(r1, ao) and not torch.allclose(half, r1)
    with pytest.raises(Exception, match="cond_rel must be"):
        m(x, t, cond=cond, cond_mask=mask, cond_rel=torch.ones(2, 7, 1))


def test_xattn_learns_a_frame_aligned_target():
    """A few Adam steps fit a target that depends on the aligned video feature."""
    torch.manual_seed(4)
    fus = FUSIONS.build("xattn", channels=4, cond_dim=16, time_stride=1)
    h = torch.randn(4, 4, 2, 50)
    cond = torch.randn(4, 10, 16)
    # target: h plus the first video feature of the frame each STFT frame lies in
    idx = (torch.arange(50) // 5).clamp(max=9)
    target = h + cond[:, idx, 0][:, None, None, :]
    opt = torch.optim.Adam(fus.parameters(), lr=2e-2)
    losses = []
    for _ in range(100):
        loss = (fus(h, cond) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])


@pytest.mark.parametrize("kind", ["xattn", "gated_xattn"])
def test_bf16_autocast_path(kind):
    torch.manual_seed(5)
    m = NCSNpp("tiny", nf=8, cond_dim=4, fusion=kind).eval()
    _randomize(m.fusions, 0.1)
    x, t = torch.randn(1, 2, 256, 32), torch.rand(1)
    kw = dict(cond=torch.randn(1, 7, 4), cond_mask=torch.ones(1, 7, dtype=torch.bool), cond_rel=torch.rand(1, 7))
    with torch.no_grad():
        ref = m(x, t, **kw)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m(x, t, **kw)
    assert torch.isfinite(low).all()
    assert float((low.float() - ref).abs().mean() / ref.abs().mean()) < 0.05
