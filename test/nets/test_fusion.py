"""Conditioning fusion: time alignment, identity at init, learning, masking."""
import pytest
import torch

from avse.nets import FUSIONS, NCSNpp
from avse.nets.fusion import align_cond


def test_alignment_25fps_to_125fps_is_linear_and_ends_with_the_video():
    Tc = 10  # 0.4 s of video -> 50 STFT frames; give 64 (padded) frames
    cond = torch.arange(Tc, dtype=torch.float32).reshape(1, Tc, 1).repeat(2, 1, 1)
    feat, present = align_cond(cond, None, 64)
    t = torch.arange(64, dtype=torch.float32)
    u = (t / 125 * 25 - 0.5).clamp(0, Tc - 1)
    inside = (t / 125 * 25 - 0.5) <= Tc - 0.5
    torch.testing.assert_close(feat[0, inside, 0], u[inside])
    assert torch.all(feat[:, ~inside] == 0) and torch.all(present[:, ~inside] == 0)
    assert torch.all(present[:, inside] == 1)
    # a level down-sampled 4x sees frame t at original frames 4t..4t+3
    f4, _ = align_cond(cond, None, 16, time_stride=4)
    torch.testing.assert_close(f4[0, 5, 0], torch.tensor((5 * 4 + 1.5) / 125 * 25 - 0.5))
    # stretch mode: the video spans the whole spectrogram
    fs, ps = align_cond(cond, None, 40, cond_fps=None)
    assert torch.all(ps == 1) and fs[0, 0, 0] == 0 and fs[0, -1, 0] == Tc - 1


def test_masked_frames_never_reach_the_features():
    cond = torch.randn(1, 6, 3)
    mask = torch.tensor([[True, True, False, False, True, True]])
    other = cond.clone()
    other[:, 2:4] = 1e6
    f1, p1 = align_cond(cond, mask, 30)
    f2, p2 = align_cond(other, mask, 30)
    assert torch.equal(f1, f2) and torch.equal(p1, p2) and p1.min() < 1


def test_concat_is_identity_at_init_and_learns():
    torch.manual_seed(0)
    fus = FUSIONS.build("concat", channels=8, cond_dim=5, time_stride=2, heads=4)  # extra kw ignored
    h = torch.randn(2, 8, 16, 12)
    cond, mask = torch.randn(2, 4, 5), torch.ones(2, 4, dtype=torch.bool)
    assert torch.equal(fus(h, cond, mask), h)
    opt = torch.optim.Adam(fus.parameters(), lr=1e-2)
    target = torch.randn_like(h)
    (fus(h, cond, mask) - target).square().mean().backward()
    opt.step()
    assert not torch.allclose(fus(h, cond, mask), h)


def test_network_output_ignores_masked_frames_but_not_present_ones():
    torch.manual_seed(0)
    m = NCSNpp("tiny", nf=8, cond_dim=4).eval()
    with torch.no_grad():
        for p in m.fusions.parameters():
            p.normal_(0, 0.5)  # a "trained" fusion
    x, t = torch.randn(1, 2, 256, 32), torch.rand(1)
    cond = torch.randn(1, 4, 4)  # 4 video frames = 20 STFT frames
    mask = torch.tensor([[True, False, True, True]])
    changed = cond.clone()
    changed[:, 1] = 100.0
    with torch.no_grad():
        base = m(x, t)
        y0 = m(x, t, cond=cond, cond_mask=mask)
        y1 = m(x, t, cond=changed, cond_mask=mask)
        y2 = m(x, t, cond=changed, cond_mask=torch.ones_like(mask))
    assert torch.equal(y0, y1)
    assert not torch.allclose(y0, base) and not torch.allclose(y1, y2)


def test_untrained_conditional_network_equals_unconditional():
    torch.manual_seed(0)
    m = NCSNpp("tiny", nf=8, cond_dim=4).eval()
    x, t = torch.randn(1, 2, 256, 32), torch.rand(1)
    with torch.no_grad():
        torch.testing.assert_close(m(x, t, cond=torch.randn(1, 3, 4)), m(x, t))
    with pytest.raises(Exception, match="cond must be"):
        m(x, t, cond=torch.randn(1, 3, 5))
