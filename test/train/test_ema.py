"""avse.train.ema: the moving-average arithmetic, warm-up and state round trip."""
import pytest
import torch

from avse.train.ema import EMA


def _model(v):
    m = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(v)
    return m


def test_fixed_decay_math():
    m = _model(0.0)
    ema = EMA(m, decay=0.9, warmup=False)
    ref = 0.0
    for k in range(1, 6):
        with torch.no_grad():
            m.weight.fill_(float(k))
        ema.update(m)
        ref = 0.9 * ref + 0.1 * k
        assert torch.allclose(ema.module.weight, torch.full((1, 2), ref), atol=1e-6)
    assert not ema.module.weight.requires_grad and not ema.module.training
    assert m.weight.data.eq(5.0).all()  # the trained model is untouched


def test_warmup_decay_and_state_round_trip():
    m = _model(1.0)
    ema = EMA(m, decay=0.999, warmup=True)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    ema.num_updates = 5
    assert ema.current_decay() == pytest.approx(6 / 15)
    ema.num_updates = 100000
    assert ema.current_decay() == pytest.approx(0.999)
    ema.num_updates = 0
    with torch.no_grad():
        m.weight.fill_(3.0)
    ema.update(m)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.1 * 1.0 + 0.9 * 3.0))
    other = EMA(_model(0.0), decay=0.5, warmup=False)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.module.weight, ema.module.weight)
    assert other.num_updates == 1 and other.decay == 0.999 and other.warmup
    with pytest.raises(ValueError):
        EMA(m, decay=1.0)
