"""Synthetic corruptions of mouth-crop videos, with per-frame labels.

Every corruption is ``fn(lips, rng, frames=None, **options) -> (out, mask)``:
``lips`` ``(T, S, S)`` uint8 (not modified), ``out`` the corrupted copy, ``mask``
``(T,)`` bool, the frames that were corrupted. ``frames`` (``(T,)`` bool) chooses the
frames to corrupt; by default :func:`segments` picks about half of them in runs, like
real dropouts and occlusions. They serve two purposes: labels for training the
lip-reliability network (:mod:`avse.lips.reliability`), and degraded video for the
audio-visual robustness tests (50 % of frames missing, an occluded mouth, video out
of sync).

``time_shift`` changes no pixel: every shifted frame looks clean but shows the
wrong moment, so it is not a per-frame reliability label (a network that sees only
the video cannot detect it) and is not in :data:`TRAIN_CORRUPTIONS`.

The corruption types follow the visual degradations studied for audio-visual
speech recognition robustness (occlusion, blur, low light, missing frames; e.g.
Hong, Kim, Choi & Ro, "Visual context-driven audio feature enhancement for robust
end-to-end audio-visual speech recognition", Interspeech 2022, and "Watch or
listen: robust audio-visual speech recognition with visual corruption modeling and
reliability scoring", CVPR 2023).
"""
import re
from typing import Callable, Dict, Optional

import numpy as np

from avse.errors import InputError


def _check(lips: np.ndarray) -> np.ndarray:
    lips = np.asarray(lips)
    if lips.ndim != 3 or lips.dtype != np.uint8 or len(lips) == 0:
        raise InputError(f"lips must be uint8 (T, S, S) with T > 0, got {lips.dtype} {lips.shape}")
    return lips


def segments(n: int, rng: np.random.Generator, frac: float = 0.5, min_len: int = 3,
             max_len: int = 12) -> np.ndarray:
    """``(n,)`` bool: runs of ``min_len``..``max_len`` frames at random places,
    covering ``round(frac * n)`` frames exactly."""
    target = int(round(np.clip(frac, 0.0, 1.0) * n))
    mask = np.zeros(n, bool)
    while mask.sum() < target:
        free = np.flatnonzero(~mask)
        start = int(rng.choice(free))
        length = int(rng.integers(min_len, max_len + 1))
        run = np.arange(start, min(n, start + length))
        run = run[~mask[run]][: target - int(mask.sum())]
        mask[run] = True
    return mask


def _frames(lips, rng, frames) -> np.ndarray:
    if frames is None:
        return segments(len(lips), rng)
    frames = np.asarray(frames, dtype=bool)
    if frames.shape != (len(lips),):
        raise InputError(f"frames mask must have shape ({len(lips)},), got {frames.shape}")
    return frames


def missing(lips, rng, frames=None, fill: str = "zero"):
    """Missing frames (a dropped camera frame, a lost face). ``fill``: ``zero``
    (black), ``mean`` (flat grey at the clip mean), ``noise`` (uniform noise) or
    ``repeat`` (the last good frame is held; not visible in a single frame)."""
    lips, m = _check(lips), _frames(lips, rng, frames)
    out = lips.copy()
    if fill == "zero":
        out[m] = 0
    elif fill == "mean":
        out[m] = np.uint8(round(float(lips.mean())))
    elif fill == "noise":
        out[m] = rng.integers(0, 256, out[m].shape, dtype=np.uint8)
    elif fill == "repeat":
        for k in np.flatnonzero(m):
            out[k] = out[k - 1] if k > 0 else lips[np.flatnonzero(~m)[0]] if (~m).any() else 0
    else:
        raise InputError(f"unknown fill {fill!r}; choose zero, mean, noise or repeat")
    return out, m


def occlude(lips, rng, frames=None, cover: tuple = (0.35, 0.7)):
    """An object in front of the mouth (hand, microphone): a flat or textured
    rectangle or ellipse over the crop centre, ``cover`` its side range as a
    fraction of the crop; the same object for one clip, slowly moving."""
    import cv2

    lips, m = _check(lips), _frames(lips, rng, frames)
    out = lips.copy()
    S = lips.shape[1]
    w, h = (rng.uniform(*cover, size=2) * S)
    c = S / 2 + rng.uniform(-0.12, 0.12, size=2) * S
    level = float(rng.choice([rng.uniform(0, 60), rng.uniform(190, 255), rng.uniform(60, 190)]))
    texture = rng.uniform(0, 25)
    ellipse = rng.random() < 0.5
    cc = c.copy()
    for k in np.flatnonzero(m):
        cc += 0.7 * rng.normal(size=2)  # slow random walk of the object
        obj = np.zeros((S, S), np.uint8)
        if ellipse:
            cv2.ellipse(obj, (int(cc[0]), int(cc[1])), (int(w / 2), int(h / 2)), 0, 0, 360, 1, -1)
        else:
            cv2.rectangle(obj, (int(cc[0] - w / 2), int(cc[1] - h / 2)), (int(cc[0] + w / 2), int(cc[1] + h / 2)), 1, -1)
        patch = level + texture * rng.standard_normal((S, S))
        out[k] = np.where(obj > 0, np.clip(patch, 0, 255), out[k]).astype(np.uint8)
    return out, m


def blur(lips, rng, frames=None, sigma: tuple = (2.5, 6.0)):
    """Out of focus or motion blur: Gaussian (``sigma`` pixels) or a line kernel of
    ``4 sigma`` pixels in a random direction."""
    import cv2

    lips, m = _check(lips), _frames(lips, rng, frames)
    out = lips.copy()
    s = rng.uniform(*sigma)
    if rng.random() < 0.5:
        for k in np.flatnonzero(m):
            out[k] = cv2.GaussianBlur(lips[k], (0, 0), s)
    else:
        n = int(4 * s) | 1
        ker = np.zeros((n, n), np.float32)
        ker[n // 2] = 1.0 / n
        rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), rng.uniform(0, 180), 1.0)
        ker = cv2.warpAffine(ker, rot, (n, n))
        ker /= max(float(ker.sum()), 1e-6)
        for k in np.flatnonzero(m):
            out[k] = cv2.filter2D(lips[k], -1, ker, borderType=cv2.BORDER_REFLECT)
    return out, m


def dark(lips, rng, frames=None, gain: tuple = (0.04, 0.2), noise: tuple = (2.0, 8.0)):
    """Low light: grey levels scaled by ``gain`` plus sensor noise (grey levels)."""
    lips, m = _check(lips), _frames(lips, rng, frames)
    out = lips.copy()
    g, s = rng.uniform(*gain), rng.uniform(*noise)
    x = lips[m].astype(np.float32) * g + rng.normal(0, s, lips[m].shape)
    out[m] = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return out, m


def off_centre(lips, rng, frames=None, shift: tuple = (0.3, 0.5), turn: tuple = (0.35, 0.6)):
    """A bad crop: the mouth moved off the centre by ``shift`` of the crop size, or
    the head turned (approximated by squeezing the face horizontally to ``turn`` of
    its width around a point beside the mouth, the view of a strongly non-frontal
    face)."""
    import cv2

    lips, m = _check(lips), _frames(lips, rng, frames)
    out = lips.copy()
    S = lips.shape[1]
    if rng.random() < 0.5:
        ang = rng.uniform(0, 2 * np.pi)
        d = rng.uniform(*shift) * S
        M = np.array([[1.0, 0.0, d * np.cos(ang)], [0.0, 1.0, d * np.sin(ang)]])
    else:
        f = rng.uniform(*turn)
        x0 = S / 2 + rng.choice([-1, 1]) * 0.4 * S
        M = np.array([[f, 0.0, x0 * (1 - f)], [0.0, 1.0, 0.0]])
    for k in np.flatnonzero(m):
        out[k] = cv2.warpAffine(lips[k], M, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, m


def time_shift(lips, n_frames: int):
    """Video delayed by ``n_frames`` (negative: early) against its audio, the ends
    padded with the edge frame. Returns ``(out, mask)``, ``mask`` all True when the
    shift is non-zero (every frame is out of sync; see the module note)."""
    lips = _check(lips)
    n = int(n_frames)
    idx = np.clip(np.arange(len(lips)) - n, 0, len(lips) - 1)
    return lips[idx].copy(), np.full(len(lips), n != 0)


CORRUPTIONS: Dict[str, Callable] = {"missing": missing, "occlude": occlude, "blur": blur,
                                    "dark": dark, "off_centre": off_centre}
TRAIN_CORRUPTIONS = ("missing", "occlude", "blur", "dark", "off_centre")


def random_corruption(lips: np.ndarray, rng: np.random.Generator, p_clean: float = 0.25,
                      kinds: Optional[tuple] = None, frac: tuple = (0.2, 1.0)):
    """Training example: with probability ``p_clean`` the clip as is, else one
    corruption of ``kinds`` on a random ``frac`` range of its frames (missing frames
    with a zero, mean or noise fill). Returns ``(out (T, S, S) uint8, label (T,)
    float32)``, label 1 for clean frames and 0 for corrupted ones."""
    lips = _check(lips)
    if rng.random() < p_clean:
        return lips.copy(), np.ones(len(lips), np.float32)
    kind = str(rng.choice(list(kinds or TRAIN_CORRUPTIONS)))
    if kind not in CORRUPTIONS:
        raise InputError(f"unknown corruption {kind!r}; choose from {sorted(CORRUPTIONS)}")
    frames = segments(len(lips), rng, rng.uniform(*frac), min_len=2, max_len=max(2, len(lips) // 2))
    opts = {"fill": str(rng.choice(["zero", "mean", "noise"]))} if kind == "missing" else {}
    out, m = CORRUPTIONS[kind](lips, rng, frames, **opts)
    return out, (~m).astype(np.float32)


_DEGRADE = re.compile(r"^(none|occlude|shuffle|missing(\d+)|shift(-?\d+))$")


def check_degradation(name: str) -> str:
    """Validate a degradation name (see module doc); returns it."""
    m = _DEGRADE.match(str(name))
    if not m or (m.group(2) is not None and not 0 <= int(m.group(2)) <= 100):
        raise InputError(f"unknown lip degradation {name!r}; use none, occlude, shuffle, missing<0-100> "
                         "(e.g. missing50) or shift<N> (e.g. shift3, shift-3)")
    return str(name)


def degrade(name: str, lips, mask, rel, rng: np.random.Generator):
    """Apply the named test degradation (the corruptions above):

    * ``missing<P>`` (``missing50``): ``P`` % of the frames missing, in runs of 3-12
      frames (:func:`segments`), blacked out and marked missing
      (``mask`` False, ``rel`` 0), as when the face tracker loses the face;
    * ``occlude``: an object over the mouth on every frame (:func:`occlude`,
      sides 70-85 % of the crop), the frames still present and not flagged;
    * ``shift<N>`` (``shift3``): the video ``N`` frames late (:func:`time_shift`,
      edge frames repeated), e.g. 120 ms for ``shift3``.

    ``shuffle`` (another utterance's lips) needs the other utterances: the caller
    (:class:`avse.nets.lip_cond.LipConditioner`) swaps the lips and then calls this
    with ``none``.

    Visual features ``(T, D)`` float (a ``features`` lip encoder) take ``missing<P>``
    (the same frames, zeroed and marked missing) and ``shift<N>``; ``occlude`` needs pixels.
    """
    m = _DEGRADE.match(check_degradation(name))
    if name == "shuffle":
        raise InputError("lip degradation 'shuffle' swaps whole utterances; LipConditioner applies it")
    mask, rel = mask.copy(), rel.copy()
    if name == "none" or len(lips) == 0:
        return lips, mask, rel
    if np.ndim(lips) == 2:
        return _degrade_features(name, m, np.asarray(lips), mask, rel, rng)
    if name == "occlude":
        out, _ = occlude(lips, rng, frames=np.ones(len(lips), bool), cover=(0.7, 0.85))
        return out, mask, rel
    if m.group(2) is not None:
        gone = segments(len(lips), rng, int(m.group(2)) / 100.0)
        out, _ = missing(lips, rng, frames=gone, fill="zero")
        mask[gone] = False
        rel[gone] = 0.0
        return out, mask, rel
    out, _ = time_shift(lips, int(m.group(3)))
    return out, mask, rel


def _degrade_features(name: str, m, feats: np.ndarray, mask, rel, rng: np.random.Generator):
    """:func:`degrade` of visual features ``(T, D)``."""
    if name == "occlude":
        raise InputError("lip degradation 'occlude' paints over mouth pixels; a model on visual features takes "
                         "none, missing<P>, shift<N> or shuffle")
    if m.group(2) is not None:
        gone = segments(len(feats), rng, int(m.group(2)) / 100.0)
        out = feats.copy()
        out[gone] = 0
        mask[gone] = False
        rel[gone] = 0.0
        return out, mask, rel
    idx = np.clip(np.arange(len(feats)) - int(m.group(3)), 0, len(feats) - 1)
    return feats[idx].copy(), mask, rel
