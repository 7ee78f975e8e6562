"""Reliability-weighted lip guidance and the fallback prior (avse.nets.lip_cond.make_cond_score_fn), on toy
score models whose outputs say which conditioning they saw."""
import pytest
import torch

from avse.errors import InputError
from avse.nets.lip_cond import frame_reliability, make_cond_score_fn

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")


class _Align(torch.nn.Module):
    cond_fps, spec_fps = 25.0, 125.0  # one video frame = 5 STFT frames


class ToyAV(torch.nn.Module):
    """``s = x + 1`` per STFT frame with video present (mask interpolated), ``x`` without."""

    def __init__(self):
        super().__init__()
        self.align = _Align()
        self.calls = []

    def forward(self, x, t, cond=None, cond_mask=None, cond_rel=None):
        self.calls.append(x.shape[0])
        if cond is None:
            return x.clone()
        from avse.nets.fusion import align_cond

        _, present = align_cond(cond, cond_mask, x.shape[-1], 25.0, 125.0)
        return x + present[:, None, :].to(x.real.dtype)


class ToyAO(torch.nn.Module):
    def forward(self, x, t):
        return x - 5


def _cond(mask, rel=None):
    mask = torch.as_tensor(mask, dtype=torch.bool)[None]
    rel = torch.ones(mask.shape) if rel is None else torch.as_tensor(rel, dtype=torch.float32)[None]
    return {"cond": torch.randn(1, mask.shape[1], 3), "cond_mask": mask, "cond_rel": rel * mask}


def _x(B=2, T=20):
    return torch.randn(B, 4, T, dtype=torch.complex64)


GAP = [1, 1, 1, 0, 0, 0, 1, 1, 1]  # 9 video frames (45 STFT frames), 3 missing in the middle
ON, OFF = [5, 8, 37], [20, 22]  # STFT frames between two present / two missing video frames


def test_frame_reliability_interpolates_and_is_zero_where_missing_or_past_the_video():
    rel = [1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5]
    r = frame_reliability(_cond(GAP, rel), 60, 25.0, 125.0)[0, 0]
    assert r.shape == (60,)
    assert r[5] == 1 and r[20] == 0 and r[22] == 0 and r[37] == 0.5
    assert 0 < r[14] < 1  # between a present and a missing video frame
    assert (r[46:] == 0).all()  # past the end of the video


def test_all_reliable_frames_keep_the_one_call_conditional_score():
    net = ToyAV()
    fn = make_cond_score_fn(net, CPU, False, _cond([1, 1, 1, 1]), rel_guidance=True)
    x = _x(T=20)
    torch.testing.assert_close(fn(x, torch.ones(2)), x + 1)
    assert net.calls == [2]


def test_rel_guidance_takes_the_unconditional_score_on_missing_frames():
    net = ToyAV()
    x = _x(T=45)
    cond = _cond(GAP)
    plain = make_cond_score_fn(net, CPU, False, cond)(x, torch.ones(2))
    fn = make_cond_score_fn(net, CPU, False, cond, rel_guidance=True)
    out = fn(x, torch.ones(2))
    assert net.calls[-1] == 4  # conditional and unconditional in one batch
    d = (out - x).real[0, 0]
    torch.testing.assert_close(d[ON], torch.ones(3))  # reliable frames: the conditional score
    torch.testing.assert_close(d[OFF], torch.zeros(2))  # missing frames: the unconditional score
    assert not torch.allclose(out, plain)
    # the guidance weight multiplies the per-frame reliability
    out2 = make_cond_score_fn(net, CPU, False, cond, guidance=2.0, rel_guidance=True)(x, torch.ones(2))
    torch.testing.assert_close((out2 - x).real[0, 0, [5, 20]], torch.tensor([2.0, 0.0]))


def test_fallback_model_gives_the_unconditional_score():
    net, ao = ToyAV(), ToyAO()
    x = _x(T=45)
    fn = make_cond_score_fn(net, CPU, False, _cond(GAP), rel_guidance=True, fallback=ao)
    d = (fn(x, torch.ones(2)) - x).real[1, 2]
    torch.testing.assert_close(d[ON], torch.ones(3))
    torch.testing.assert_close(d[OFF], torch.full((2,), -5.0))  # the audio-only model's score
    assert net.calls == [2]  # the AV model once, at the batch size (the fallback runs alone)
    # whole-utterance guidance toward the AV score from the fallback's: s_ao + w (s_av - s_ao)
    g = make_cond_score_fn(net, CPU, False, _cond([1, 1, 1, 1]), guidance=0.0, fallback=ao)
    torch.testing.assert_close(g(x, torch.ones(2)), x - 5)


def test_no_reliable_frame_or_zero_weight_is_one_call_of_the_unconditional_score():
    net, ao = ToyAV(), ToyAO()
    x = _x(T=20)
    for kw in ({"rel_guidance": True}, {"guidance": 0.0}):
        net.calls.clear()
        out = make_cond_score_fn(net, CPU, False, _cond([0, 0, 0, 0]) if kw.get("rel_guidance")
                                 else _cond([1, 1, 1, 1]), **kw)(x, torch.ones(2))
        torch.testing.assert_close(out, x)
        assert net.calls == [2]
    net.calls.clear()
    out = make_cond_score_fn(net, CPU, False, _cond([0, 0, 0, 0]), rel_guidance=True, fallback=ao)(x, torch.ones(2))
    torch.testing.assert_close(out, x - 5)
    assert net.calls == []


def test_rel_guidance_needs_a_model_that_aligns_video():
    class NoAlign(torch.nn.Module):
        def forward(self, x, t, **kw):
            return x

    with pytest.raises(InputError, match="aligns video"):
        make_cond_score_fn(NoAlign(), CPU, False, _cond([1, 1]), rel_guidance=True)
