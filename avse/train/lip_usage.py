"""How much an audio-visual prior uses the lips: a diagnostic of a trained score model.

The denoising score-matching loss (:func:`avse.train.trainer.dsm_loss`) of the same clean
crops, diffusion times and noise is computed under three visual conditions:

* ``true``: the crops' own lips (with their mask and reliability);
* ``missing``: the video marked absent (``cond_mask`` and ``cond_rel`` zero), as for
  an utterance without video;
* ``other``: the lips of another crop of the set (rolled by one), i.e. real but wrong
  lips with the same statistics.

A prior that uses the *content* of the lips has ``other`` above ``true``; a prior that
only reacts to the *presence* of video has ``missing`` above ``true`` and ``other``
equal to ``true``. The gains are reported in percent of the loss without the help
(``100 (other - true) / other`` and ``100 (missing - true) / missing``) per diffusion
time, since the lips can only matter where the audio leaves the speech uncertain
(larger ``t``) and the loss weighting shrinks there.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch

from avse.errors import InputError
from avse.train.objectives import dsm_loss
from avse.utils.seeding import stable_hash

CONDITIONS = ("true", "missing", "other")


def visual_conditions(cond: Dict[str, torch.Tensor]) -> Dict[str, Dict[str, torch.Tensor]]:
    """The three conditionings of the module docstring from the crops' own ``cond``
    (``cond`` (N, Tv, H, W), ``cond_mask`` (N, Tv), ``cond_rel`` (N, Tv))."""
    if cond["cond"].shape[0] < 2:
        raise InputError("lip usage: need at least 2 crops (the 'other' condition borrows "
                         "the lips of another crop)")
    missing = dict(cond, cond_mask=torch.zeros_like(cond["cond_mask"]),
                   cond_rel=torch.zeros_like(cond["cond_rel"]))
    other = {k: v.roll(1, 0) for k, v in cond.items()}
    return {"true": cond, "missing": missing, "other": other}


@torch.no_grad()
def lip_usage(model, sde, x0: torch.Tensor, cond: Dict[str, torch.Tensor],
              times: Sequence[float], batch_size: int = 8, seed: int = 0) -> List[dict]:
    """DSM losses of ``model`` on the clean crops ``x0`` (N, F, T) complex at each
    diffusion time of ``times`` under the three visual conditions. The noise is drawn
    once per time (seeded) and shared by the conditions. Returns one row per time:
    ``{"t", "sigma", "true", "missing", "other", "content_gain_pct",
    "presence_gain_pct"}`` (losses: means over crops)."""
    if not len(times):
        raise InputError("lip usage: need at least one diffusion time")
    bad = [t for t in times if not sde.t_eps <= float(t) <= sde.T]
    if bad:
        raise InputError(f"lip usage: times {bad} outside [{sde.t_eps}, {sde.T}]")
    conds = visual_conditions(cond)
    rows = []
    for t in times:
        g = torch.Generator().manual_seed(stable_hash(seed, "lip_usage", float(t)))
        z = torch.randn(tuple(x0.shape), dtype=torch.complex64, generator=g).to(x0.device)
        tt = torch.full((x0.shape[0],), float(t), device=x0.device)
        row = {"t": float(t), "sigma": float(sde.marginal(torch.tensor(float(t)))[1])}
        for name, c in conds.items():
            total = 0.0
            for i in range(0, x0.shape[0], batch_size):
                sl = slice(i, i + batch_size)
                n = x0[sl].shape[0]
                total += float(dsm_loss(model, sde, x0[sl], tt[sl], z[sl],
                                        {k: v[sl] for k, v in c.items()})) * n
            row[name] = total / x0.shape[0]
        row["content_gain_pct"] = 100.0 * (row["other"] - row["true"]) / max(row["other"], 1e-30)
        row["presence_gain_pct"] = 100.0 * (row["missing"] - row["true"]) / max(row["missing"], 1e-30)
        rows.append(row)
    return rows


def format_table(rows: List[dict]) -> str:
    """The rows of :func:`lip_usage` as a Markdown table."""
    lines = ["| t | sigma | loss, true lips | video missing | other lips | content gain % | presence gain % |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['t']:.3f} | {r['sigma']:.3f} | {r['true']:.5f} | {r['missing']:.5f} | "
                     f"{r['other']:.5f} | {r['content_gain_pct']:+.2f} | {r['presence_gain_pct']:+.2f} |")
    return "\n".join(lines)
