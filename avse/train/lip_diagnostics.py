"""Why might an audio-visual prior ignore the lips? Numbers for the usual suspects.

:mod:`avse.train.lip_usage` measures *whether* the lips help; this module gives the
quantities that say *why not* (``avse.bin.lip_usage --diagnose true``):

* :func:`grad_norms`: the DSM-loss gradient reaching each parameter group. The fusion
  output layers start at zero, so an untrained fusion passes *no* gradient to the lip
  encoder; a frozen group gets none by construction.
* :func:`embedding_stats`: how much the lip embeddings vary over time within a crop
  (near-constant embeddings carry presence, not content).
* :func:`augmentation_stats`: how often training saw the video at all.
* :func:`output_differences`: how much the score changes with the lips removed or
  swapped for another crop's.
* :func:`alignment`: the crop's video frames against its STFT frames at the rates the
  model's fusion assumes (25 and 125 frames/s by default, :mod:`avse.nets.fusion`): a
  hop other than ``fs / 125`` misplaces the lips in time.

Shapes: ``x0``/``x_t`` (N, F, T) complex64; ``cond`` = ``{"cond": lips (N, Tc, H, W)
uint8, "cond_mask": (N, Tc) bool, "cond_rel": (N, Tc) float in [0, 1]}``; ``t`` (N,)
diffusion times; ``z`` (N, F, T) complex unit noise.
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence

import numpy as np
import torch

from avse.nets.fusion import model_frame_rates
from avse.train.lip_usage import visual_conditions
from avse.train.objectives import dsm_loss
from avse.utils.seeding import stable_hash

def param_groups(model) -> Dict[str, List[torch.nn.Parameter]]:
    """Parameters of ``model`` (a :class:`ScoreModel`) by group: ``lip_encoder``, ``fusion``,
    ``lip_variance`` (each left out when absent) and ``backbone_other`` (the rest)."""
    parts = {"lip_encoder": getattr(model, "cond_encoder", None),
             "fusion": getattr(getattr(model, "backbone", None), "fusions", None),
             "lip_variance": getattr(model, "lip_variance", None)}
    out, seen = {}, set()
    for name, mod in parts.items():
        if mod is not None:
            out[name] = [p for p in mod.parameters() if id(p) not in seen]
            seen.update(id(p) for p in out[name])
    out["backbone_other"] = [p for p in model.parameters() if id(p) not in seen]
    return out


def _sq(ts) -> float:
    return float(sum(float(x.detach().double().pow(2).sum()) for x in ts))


def grad_norms(model, sde, x0: torch.Tensor, cond: Dict[str, torch.Tensor], t: torch.Tensor,
               z: torch.Tensor, batch_size: int | None = None) -> Dict[str, dict]:
    """Gradient of the DSM loss (mean over all ``N`` crops, accumulated in batches of
    ``batch_size``) per parameter group, by :func:`torch.autograd.grad`: the weights,
    buffers and ``.grad`` fields of ``model`` are left as they were. Runs in the model's
    current train/eval mode. Returns ``{group: {"grad_norm" (L2; None when frozen),
    "param_norm" (L2), "ratio" (grad/param), "n_params", "n_trainable", "frozen"}}``."""
    groups = param_groups(model)
    train = [p for ps in groups.values() for p in ps if p.requires_grad]
    sums = [torch.zeros_like(p) for p in train]
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    N, bs = x0.shape[0], int(batch_size or x0.shape[0])
    for i in range(0, N if train else 0, bs):
        sl = slice(i, i + bs)
        with torch.enable_grad():
            loss = dsm_loss(model, sde, x0[sl], t[sl], z[sl], {k: v[sl] for k, v in cond.items()})
            grads = torch.autograd.grad(loss, train, allow_unused=True)
        for s, g in zip(sums, grads):
            if g is not None:
                s.add_(g.detach(), alpha=x0[sl].shape[0] / N)
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(buffers[n])
    grad_of = {id(p): g for p, g in zip(train, sums)}
    out = {}
    for name, ps in groups.items():
        tr = [p for p in ps if p.requires_grad]
        pn = math.sqrt(_sq(ps))
        gn = math.sqrt(_sq(grad_of[id(p)] for p in tr)) if tr else None
        out[name] = {"grad_norm": gn, "param_norm": pn, "ratio": None if gn is None else gn / max(pn, 1e-30),
                     "n_params": sum(p.numel() for p in ps), "n_trainable": sum(p.numel() for p in tr),
                     "frozen": not tr}
    return out


def _temporal(emb: torch.Tensor, mask: torch.Tensor):
    """Per-crop (std over present frames, mean over dims), norms, time means."""
    stds, norms, means = [], [], []
    for e, m in zip(emb, mask):
        e = e[m]
        if len(e) >= 2:
            stds.append(float(e.std(0, unbiased=False).mean()))
            means.append(e.mean(0))
        norms += e.norm(dim=-1).tolist()
    return stds, norms, means


@torch.no_grad()
def embedding_stats(model, cond: Dict[str, torch.Tensor], batch_size: int = 8) -> dict:
    """Lip embeddings ``e (N, Tc, D)`` = ``model.encode_cond(lips, mask)``. Returns
    ``{"crops" (with >= 2 present frames), "dim" D, "temporal_std" (mean over crops and
    dimensions of the std over the present frames), "mean_norm" (mean ||e|| of the present
    frames), "ratio" (temporal_std / mean_norm), "between_crop_std" (std over crops of the
    time-averaged embedding, mean over dimensions), "static_std" (temporal_std of the
    crops with every present frame replaced by their time-mean image, or time-mean features:
    the part due to the crop edges and masking alone)}``."""
    lips, mask = cond["cond"], cond["cond_mask"].bool()
    m = mask.reshape(mask.shape + (1,) * (lips.dim() - 2))  # crops (N, Tc, H, W) or features (N, Tc, D)
    mf = m.float()
    still = torch.where(m, (lips.float() * mf).sum(1, keepdim=True) / mf.sum(1, keepdim=True).clamp(min=1), 0.0)
    still = (still if lips.is_floating_point() else still.round()).to(lips.dtype)
    enc = [torch.cat([model.encode_cond(x[i:i + batch_size], mask[i:i + batch_size]).float()
                      for i in range(0, x.shape[0], batch_size)]) for x in (lips, still)]
    stds, norms, means = _temporal(enc[0], mask)
    nan = float("nan")
    ts, mn = (float(np.mean(stds)) if stds else nan), (float(np.mean(norms)) if norms else nan)
    return {"crops": len(stds), "dim": int(enc[0].shape[-1]), "temporal_std": ts, "mean_norm": mn,
            "ratio": ts / mn if mn > 0 else nan,
            "between_crop_std": float(torch.stack(means).std(0, unbiased=False).mean()) if len(means) > 1 else nan,
            "static_std": float(np.mean(_temporal(enc[1], mask)[0])) if stds else nan}


def augmentation_stats(dataset, n: int, seed: int = 0) -> dict:
    """``n`` items of a training :class:`AVCropDataset` (random utterances and crop
    seeds, with its ``augment``). Fractions in [0, 1]: ``video_dropped`` (crops whose
    mask is all False), ``frames_masked`` (mean over crops), ``frames_masked_raw`` (the
    same before augmentation: frames past the end of the video or without lips),
    ``present_rel`` (mean reliability of the present frames, after augmentation)."""
    from avse.io.audio import audio_info

    rng = np.random.default_rng(stable_hash(seed, "diag_aug"))
    dropped, masked, raw, rels = [], [], [], []
    for k in range(int(n)):
        i, cs = int(rng.integers(len(dataset))), stable_hash(seed, "diag_aug", k)
        _, _, mask, rel = dataset[(i, cs)][:4]
        n_samples = audio_info(dataset.utts[i][1], utt=dataset.utts[i][0])[2]  # header only
        raw.append(1.0 - float(dataset.lip_crop(i, n_samples, cs)[1].mean()))
        dropped.append(not bool(mask.any()))
        masked.append(1.0 - float(mask.float().mean()))
        rels += rel[mask].tolist()
    return {"draws": int(n), "augment": None if dataset.augment is None else dict(vars(dataset.augment)),
            "video_dropped": float(np.mean(dropped)), "frames_masked": float(np.mean(masked)),
            "frames_masked_raw": float(np.mean(raw)),
            "present_rel": float(np.mean(rels)) if rels else float("nan")}


@torch.no_grad()
def output_differences(model, x_t: torch.Tensor, t: float, cond: Dict[str, torch.Tensor],
                       batch_size: int = 8) -> dict:
    """Relative L2 difference ``||s_true - s_alt|| / ||s_true||`` (over all crops and bins)
    of the score at ``x_t`` and time ``t`` between the true lips and ``zero`` (video
    marked missing: ``cond_mask`` False, ``cond_rel`` 0) or ``other`` (lips of the crop
    rolled by one). Returns ``{"t", "zero", "other"}``."""
    tt = torch.full((x_t.shape[0],), float(t), device=x_t.device)
    scores = {name: torch.cat([model(x_t[i:i + batch_size], tt[i:i + batch_size],
                                     **{k: v[i:i + batch_size] for k, v in c.items()})
                               for i in range(0, x_t.shape[0], batch_size)])
              for name, c in visual_conditions(cond).items()}
    ref = max(_sq([scores["true"].abs()]), 1e-30)
    return {"t": float(t), **{k: math.sqrt(_sq([(scores["true"] - scores[c]).abs()]) / ref)
                              for k, c in (("zero", "missing"), ("other", "other"))}}


def output_difference_rows(model, sde, x0, cond, times: Sequence[float], seed: int = 0,
                           batch_size: int = 8) -> List[dict]:
    """:func:`output_differences` at ``x_t`` drawn from ``x0`` at each time of ``times``
    (the noise of :func:`avse.train.lip_usage.lip_usage` for the same ``seed``)."""
    rows = []
    for t in times:
        g = torch.Generator().manual_seed(stable_hash(seed, "lip_usage", float(t)))
        z = torch.randn(tuple(x0.shape), dtype=torch.complex64, generator=g).to(x0.device)
        x_t = sde.perturb(x0, torch.full((x0.shape[0],), float(t), device=x0.device), z)[0]
        rows.append(output_differences(model, x_t, float(t), cond, batch_size))
    return rows


def alignment(model, n_stft: int, cond_mask: torch.Tensor, data_spec_fps: float | None = None) -> dict:
    """Video frames of the crops ``Tc`` (``cond_mask.shape[1]``) against ``n_stft *
    cond_fps / spec_fps``, the frames the model's fusion expects for ``n_stft`` STFT
    frames (rates of its first fusion module or lip-variance head; default 25 / 125).
    ``max_abs_mismatch``: in video frames. ``data_spec_fps``: the data's ``fs / hop``."""
    cond_fps, spec_fps = model_frame_rates(model) or (25.0, 125.0)
    Tc = int(cond_mask.shape[1])
    expected = float(Tc) if cond_fps is None else n_stft * float(cond_fps) / spec_fps
    return {"stft_frames": int(n_stft), "video_frames": Tc, "model_cond_fps": cond_fps,
            "model_spec_fps": spec_fps, "data_spec_fps": data_spec_fps, "expected_video_frames": expected,
            "max_abs_mismatch": abs(Tc - expected)}


def findings(d: dict) -> List[str]:
    """One-line reasons, from the numbers of :func:`avse.bin.lip_usage` ``--diagnose``,
    why the lips may be ignored (empty: none of the checks fired)."""
    out, g = [], d.get("grad_norms", {})
    if g.get("lip_encoder", {}).get("frozen"):
        out.append("the lip encoder is frozen: its embeddings are whatever its initialisation gives")
    elif g.get("lip_encoder", {}).get("grad_norm") == 0.0:
        out.append("no gradient reaches the lip encoder (fusion outputs still zero?)")
    bb = g.get("backbone_other", {}).get("ratio")
    for k in ("lip_encoder", "fusion", "lip_variance"):
        r = g.get(k, {}).get("ratio")
        if r and bb and r < 0.01 * bb:  # relative update per step: 100 x slower than the backbone's
            out.append(f"{k}: gradient / weight norm is {r / bb:.2g} of the backbone's")
    e = d.get("embedding", {})
    if e.get("ratio", 1.0) < 0.05 or e.get("temporal_std", 0.0) < 1.5 * e.get("static_std", 0.0):
        out.append(f"lip embeddings hardly vary over time (temporal std / norm {e['ratio']:.3g}; "
                   f"{e['temporal_std']:.3g} against {e['static_std']:.3g} for still lips)")
    a = d.get("augmentation") or {}
    if a.get("frames_masked", 0.0) > 0.5:
        out.append(f"training crops have {100 * a['frames_masked']:.0f} % of the video frames missing")
    o = d.get("output_differences", [])
    if o and max(max(r["zero"], r["other"]) for r in o) < 1e-3:
        out.append("the score hardly changes without the lips or with other lips (< 0.1 %)")
    al = d.get("alignment", {})
    if al.get("max_abs_mismatch", 0.0) > 1.0:
        out.append(f"lips and audio misaligned: {al['video_frames']} video frames for {al['stft_frames']} STFT "
                   f"frames, the model expects {al['expected_video_frames']:.1f} (STFT at "
                   f"{al['model_spec_fps']:g} frames/s; the data's is {al['data_spec_fps']})")
    return out


def format_diagnostics(d: dict) -> str:
    """The diagnostics dict (keys ``grad_norms``, ``embedding``, ``augmentation``,
    ``output_differences``, ``alignment``, ``findings``) as Markdown."""
    L = ["## Diagnostics", "", "| group | grad norm | param norm | grad / param | params | frozen |",
         "|---|---:|---:|---:|---:|---|"]
    for k, r in d["grad_norms"].items():
        f = [("-" if r[x] is None else f"{r[x]:.4g}") for x in ("grad_norm", "param_norm", "ratio")]
        L.append(f"| {k} | {f[0]} | {f[1]} | {f[2]} | {r['n_params']} "
                 f"| {'frozen' if r['frozen'] else 'no'} |")
    e = d["embedding"]
    L += ["", f"- Lip embeddings ({e['crops']} crops, dim {e['dim']}): temporal std {e['temporal_std']:.4g} "
          f"(still lips: {e['static_std']:.4g}), mean norm {e['mean_norm']:.4g}, ratio {e['ratio']:.4g}, "
          f"between-crop std {e['between_crop_std']:.4g}"]
    a = d.get("augmentation")
    if a:
        L.append(f"- Training augmentation ({a['draws']} draws, {a['augment']}): whole video dropped "
                 f"{a['video_dropped']:.3f}, frames masked {a['frames_masked']:.3f} (before augmentation "
                 f"{a['frames_masked_raw']:.3f}), mean reliability of present frames {a['present_rel']:.3f}")
    al = d["alignment"]
    L.append(f"- Alignment: {al['video_frames']} video frames for {al['stft_frames']} STFT frames, expected "
             f"{al['expected_video_frames']:.2f} at {al['model_cond_fps']} / {al['model_spec_fps']:g} frames/s "
             f"(data STFT {al['data_spec_fps']} frames/s): max mismatch {al['max_abs_mismatch']:.2f} video frames")
    L += ["", "| t | score rel. diff, zero lips | other lips |", "|---:|---:|---:|"]
    L += [f"| {r['t']:.3f} | {r['zero']:.4g} | {r['other']:.4g} |" for r in d["output_differences"]]
    L += ["", "Findings:"] + [f"- {s}" for s in d.get("findings") or ["none of the checks fired"]]
    return "\n".join(L)
