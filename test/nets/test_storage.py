"""avse.nets.storage.load_model for inference: channels-last weights, same scores; bf16 autocast on CPU."""
import torch

from avse.nets.lip_cond import make_cond_score_fn
from avse.nets.storage import load_model
from testutils import tiny_model


def _score(m, amp=False):
    g = torch.Generator().manual_seed(0)
    x = torch.complex(torch.randn(2, m.frontend.n_freq, 64, generator=g),
                      torch.randn(2, m.frontend.n_freq, 64, generator=g))
    with torch.no_grad():
        return make_cond_score_fn(m.model, torch.device("cpu"), amp)(x, torch.full((2,), 0.5))


def test_inference_weights_are_channels_last_with_the_same_scores(tmp_path, one_thread):
    path = tiny_model(str(tmp_path / "model.pt"))
    nhwc, nchw = load_model(path), load_model(path, channels_last=False)
    convs = [p for p in nhwc.model.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                         for p in convs if p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1)
    assert all(p.is_contiguous() for p in nchw.model.parameters())
    a, b = _score(nhwc), _score(nchw)
    assert a.dtype == torch.complex64 and torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


def test_bf16_autocast_runs_on_cpu(tmp_path, one_thread):
    m = load_model(tiny_model(str(tmp_path / "model.pt")))
    fp32, bf16 = _score(m), _score(m, amp=True)
    assert bf16.dtype == torch.complex64 and torch.isfinite(bf16).all()
    err = float((bf16 - fp32).abs().max() / fp32.abs().max())
    assert 0 < err < 0.1   # rounded to bf16 inside the network, not fp32 throughout
