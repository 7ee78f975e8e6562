"""avse.train.lip_usage: the three visual conditions and their losses."""
import pytest
import torch

from avse.diffusion.sde import OUVE
from avse.errors import InputError
from avse.train.lip_usage import format_table, lip_usage, visual_conditions
from avse.train.objectives import dsm_loss
from avse.utils.seeding import stable_hash


class LipScaled(torch.nn.Module):
    """A fake AV score: ``-x / sigma^2`` scaled by the mean lip brightness of the
    present frames (times their reliability), so every condition changes the loss."""

    def __init__(self, sde):
        super().__init__()
        self.sde = sde

    def forward(self, x, t, cond, cond_mask, cond_rel):
        _, sigma = self.sde.marginal(t)
        w = (cond.float().mean((2, 3)) / 255.0 * cond_mask * cond_rel).mean(1)
        return -x * ((1.0 + w) / sigma ** 2)[:, None, None]


def _crops(n=5):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, 6, 8, dtype=torch.complex64, generator=g)
    lips = torch.randint(0, 256, (n, 3, 4, 4), generator=g, dtype=torch.uint8)
    mask = torch.ones(n, 3)
    mask[0, 1] = 0
    return x0, {"cond": lips, "cond_mask": mask, "cond_rel": torch.rand(n, 3, generator=g)}


def test_conditions_and_losses_match_direct_computation():
    sde = OUVE()
    model = LipScaled(sde)
    x0, cond = _crops()
    conds = visual_conditions(cond)
    assert not conds["missing"]["cond_mask"].any() and not conds["missing"]["cond_rel"].any()
    torch.testing.assert_close(conds["other"]["cond"][1], cond["cond"][0])
    torch.testing.assert_close(conds["other"]["cond_rel"][0], cond["cond_rel"][-1])
    rows = lip_usage(model, sde, x0, cond, [0.2, 0.8], batch_size=2, seed=3)
    assert [r["t"] for r in rows] == [0.2, 0.8]
    for r in rows:
        # the same noise as the tool (seeded per time), the whole set in one batch
        g = torch.Generator().manual_seed(stable_hash(3, "lip_usage", r["t"]))
        z = torch.randn(tuple(x0.shape), dtype=torch.complex64, generator=g)
        t = torch.full((5,), r["t"])
        for name in ("true", "missing", "other"):
            want = float(dsm_loss(model, sde, x0, t, z, conds[name]))
            assert abs(r[name] - want) < 1e-5 * want, (name, r[name], want)
        assert r["missing"] != r["true"] and r["other"] != r["true"]
        assert abs(r["content_gain_pct"] - 100 * (r["other"] - r["true"]) / r["other"]) < 1e-9
        assert abs(r["sigma"] - float(sde.marginal(torch.tensor(r["t"]))[1])) < 1e-6
    table = format_table(rows)
    assert "content gain" in table and table.count("\n") == 3


def test_a_lip_blind_model_shows_no_gain():
    sde = OUVE()
    x0, cond = _crops()

    def blind(x, t, cond, cond_mask, cond_rel):
        return -x / sde.marginal(t)[1][:, None, None] ** 2

    (r,) = lip_usage(blind, sde, x0, cond, [0.5])
    assert r["true"] == r["missing"] == r["other"]
    assert r["content_gain_pct"] == 0.0 and r["presence_gain_pct"] == 0.0


def test_errors():
    sde = OUVE()
    x0, cond = _crops(1)
    with pytest.raises(InputError, match="at least 2 crops"):
        lip_usage(LipScaled(sde), sde, x0, cond, [0.5])
    x0, cond = _crops(2)
    with pytest.raises(InputError, match="outside"):
        lip_usage(LipScaled(sde), sde, x0, cond, [5.0])
    with pytest.raises(InputError, match="at least one"):
        lip_usage(LipScaled(sde), sde, x0, cond, [])
