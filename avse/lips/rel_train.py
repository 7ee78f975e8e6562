"""Training and evaluation of the lip-reliability network on corrupted clean crops.

Batches are ``clip_len``-frame windows of clean clips, each corrupted by
:func:`avse.lips.corrupt.random_corruption` (label 1 clean frame, 0 corrupted), and
the loss is per-frame binary cross-entropy. Evaluation corrupts held-out clips with
each corruption kind in turn (fixed seed) and reports accuracy at 0.5 per kind and
the area under the ROC curve of clean-vs-corrupted frames overall.
"""
import logging
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from avse.errors import InputError
from avse.lips.corrupt import CORRUPTIONS, TRAIN_CORRUPTIONS, random_corruption, segments
from avse.lips.reliability import LipRelNet, normalise

log = logging.getLogger(__name__)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U statistic, ties counted half):
    probability that a random positive (label 1) scores above a random negative."""
    scores, labels = np.asarray(scores, float), np.asarray(labels) > 0.5
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        raise InputError("AUC needs both clean and corrupted frames")
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([pos, neg]))
    return float((r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def window(clip: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """A random ``n``-frame window of ``clip`` (a shorter clip is padded by holding
    its last frame)."""
    if len(clip) >= n:
        s = int(rng.integers(0, len(clip) - n + 1))
        return np.asarray(clip[s:s + n])
    return np.asarray(clip)[np.minimum(np.arange(n), len(clip) - 1)]


def augment(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Nuisance changes that leave a crop usable (label stays clean): contrast and
    brightness, a small shift and scale of the crop, mild noise. They widen what
    counts as clean so that a network trained on one corpus (e.g. rendered mini_av
    mouths) does not call every crop of another corpus unreliable."""
    import cv2

    S = clip.shape[1]
    gain, offset = rng.uniform(0.7, 1.3), rng.uniform(-25, 25)
    scale = rng.uniform(0.9, 1.15)
    dx, dy = rng.uniform(-0.06, 0.06, size=2) * S
    M = np.array([[scale, 0, (1 - scale) * S / 2 + dx], [0, scale, (1 - scale) * S / 2 + dy]])
    out = np.empty(clip.shape, np.float32)
    for k in range(len(clip)):
        out[k] = cv2.warpAffine(np.ascontiguousarray(clip[k]), M, (S, S), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
    out = out * gain + offset + rng.normal(0, rng.uniform(0, 3), out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def make_batch(clips: Sequence[np.ndarray], rng: np.random.Generator, batch: int, clip_len: int,
               p_clean: float = 0.25, kinds: Optional[tuple] = None, jitter: bool = True):
    """``(x (B, L, S, S) uint8, y (B, L) float32)`` of corrupted windows (with
    ``jitter``, each window first goes through :func:`augment`)."""
    xs, ys = [], []
    for _ in range(batch):
        w = window(clips[int(rng.integers(len(clips)))], rng, clip_len)
        if jitter:
            w = augment(w, rng)
        x, y = random_corruption(w, rng, p_clean=p_clean, kinds=kinds)
        xs.append(x)
        ys.append(y)
    return np.stack(xs), np.stack(ys)


def train(clips: List[np.ndarray], steps: int = 2000, batch: int = 16, clip_len: int = 16,
          lr: float = 2e-3, seed: int = 0, net_conf: Optional[dict] = None, p_clean: float = 0.25,
          jitter: bool = True, log_every: int = 100) -> tuple[LipRelNet, List[dict]]:
    """Train a :class:`LipRelNet` on clean ``clips`` (each ``(T, S, S)`` uint8).
    Returns the network (eval mode) and the loss history (one entry per
    ``log_every`` steps)."""
    if not clips:
        raise InputError("no clips to train the lip-reliability network on")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = LipRelNet(size=clips[0].shape[1], **(net_conf or {}))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    lossf = torch.nn.BCEWithLogitsLoss()
    history, run = [], []
    net.train()
    for step in range(1, steps + 1):
        x, y = make_batch(clips, rng, batch, clip_len, p_clean, jitter=jitter)
        loss = lossf(net(normalise(x)), torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run.append(float(loss.detach()))
        if step % log_every == 0 or step == steps:
            history.append({"step": step, "loss": float(np.mean(run))})
            log.info("step %d loss %.4f", step, history[-1]["loss"])
            run = []
    return net.eval(), history


@torch.no_grad()
def evaluate(net: LipRelNet, clips: List[np.ndarray], seed: int = 1234, frac: float = 0.5) -> Dict[str, float]:
    """Scores on held-out ``clips``: for every corruption kind, each clip corrupted on
    ``frac`` of its frames; returns ``accuracy_<kind>`` (corrupted frames scored
    below 0.5), ``accuracy_clean`` (clean frames of untouched clips at 0.5 or
    above), ``accuracy`` (all frames) and ``auc``."""
    rng = np.random.default_rng(seed)
    net.eval()
    scores, labels, out = [], [], {}
    cases = [("clean", None)] + [(k, CORRUPTIONS[k]) for k in TRAIN_CORRUPTIONS]
    for name, fn in cases:
        s_k, y_k = [], []
        for clip in clips:
            if fn is None:
                x, y = clip, np.ones(len(clip), np.float32)
            else:
                opts = {"fill": "zero"} if name == "missing" else {}
                x, m = fn(clip, rng, segments(len(clip), rng, frac), **opts)
                y = (~m).astype(np.float32)
            s = torch.sigmoid(net(normalise(x)[None]))[0].numpy()
            s_k.append(s)
            y_k.append(y)
        s_k, y_k = np.concatenate(s_k), np.concatenate(y_k)
        sel = y_k > 0.5 if fn is None else y_k < 0.5
        out[f"accuracy_{name}"] = float(np.mean((s_k[sel] >= 0.5) == (y_k[sel] > 0.5)))
        scores.append(s_k)
        labels.append(y_k)
    s, y = np.concatenate(scores), np.concatenate(labels)
    out["accuracy"] = float(np.mean((s >= 0.5) == (y > 0.5)))
    out["auc"] = auc(s, y)
    return out
