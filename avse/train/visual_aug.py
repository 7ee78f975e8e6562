"""Lip-video augmentation for audio-visual prior training.

All functions work on one utterance: ``lips (T, H, W)`` uint8 at 25 fps, ``mask (T,)``
bool (True: the frame is present), ``rel (T,)`` float32 lip reliability in [0, 1], and
return new arrays (the inputs are not modified).

* :func:`drop_frames`: frames missing (``mask`` False, ``rel`` 0), e.g. a face detector
  that failed; the pixels are kept but never used (the lip encoder and the fusions
  ignore missing frames).
* :func:`occlude_span`: a textured rectangle (a hand, a microphone) over the mouth on a span
  of frames; the frames stay "present" since an occlusion is not flagged by the video
  front-end (a reliability estimator may flag it; see ``flag`` below).

:class:`VisualAugment` draws these at random for training so that the AV prior works
with missing or poor video (whole-utterance drop with ``p_drop_utt``, random frame drops,
occlusion). Visual features ``(T, D)`` (a ``features`` lip encoder) get the drops only:
an occluder paints pixels. The named test conditions (``missing50``, ``occlude``, ``shift3``) are
:func:`avse.lips.corrupt.degrade`, built on the corruptions the lip-reliability network
is trained on: the training occluder here and the test occluder differ on purpose, so
the robustness rows measure generalisation to an occluder the prior never saw.
"""
from dataclasses import dataclass

import numpy as np

from avse.errors import InputError

# the mouth region of an 88 x 88 mouth-centred crop (rows, cols), the occluder's target
MOUTH_BOX = (0.28, 0.78, 0.12, 0.88)


def drop_frames(lips, mask, rel, rng: np.random.Generator, rate: float, burst: int = 1):
    """Mark about ``rate`` of the frames missing, in bursts of ``burst`` frames."""
    T = len(mask)
    mask, rel = mask.copy(), rel.copy()
    if T == 0 or rate <= 0:
        return lips, mask, rel
    burst = max(1, int(burst))
    n_bursts = int(np.ceil(T / burst))
    n_drop = int(round(rate * n_bursts))
    gone = rng.choice(n_bursts, size=min(n_drop, n_bursts), replace=False)
    for b in gone:
        mask[b * burst:(b + 1) * burst] = False
    rel[~mask] = 0.0
    return lips, mask, rel


def occlude_span(lips, mask, rel, rng: np.random.Generator, cover: float = 0.8, span: tuple | None = None,
            flag: bool = False):
    """Paint a textured rectangle over ``cover`` of the mouth box on frames ``span``
    (``(start, end)``; None: all). ``flag`` sets ``rel`` to 0 on the occluded frames."""
    lips, rel = lips.copy(), rel.copy()
    T, H, W = lips.shape
    s, e = (0, T) if span is None else (max(0, int(span[0])), min(T, int(span[1])))
    if e <= s:
        return lips, mask.copy(), rel
    r0, r1, c0, c1 = MOUTH_BOX
    bh, bw = (r1 - r0) * H, (c1 - c0) * W
    h, w = max(1, int(round(bh * np.sqrt(cover)))), max(1, int(round(bw * np.sqrt(cover))))
    top = int(round(r0 * H + rng.uniform(0, max(0.0, bh - h))))
    left = int(round(c0 * W + rng.uniform(0, max(0.0, bw - w))))
    level = rng.uniform(40, 210)
    yy, xx = np.mgrid[0:h, 0:w]
    tex = level + 25 * np.sin(yy / rng.uniform(2, 6) + rng.uniform(0, 6)) * np.cos(xx / rng.uniform(3, 9))
    tex = np.clip(tex + rng.normal(0, 6, size=(h, w)), 0, 255).astype(np.uint8)
    lips[s:e, top:top + h, left:left + w] = tex[None]
    if flag:
        rel[s:e] = 0.0
    return lips, mask.copy(), rel


@dataclass
class VisualAugment:
    """Random visual corruption of one training example (all probabilities per example).

    p_drop_utt: the whole video missing. p_drop_frames: some frames missing, a fraction
    uniform in [0, max_drop_rate], in bursts of 1-``max_burst`` frames. p_occlude: an
    occluder on a random span of frames (at least a quarter of the clip), flagged in
    ``rel`` with probability ``p_occlude_flag`` (so a gated model learns both to trust the
    reliability score and to cope with unflagged occlusion).
    """

    p_drop_utt: float = 0.2
    p_drop_frames: float = 0.3
    max_drop_rate: float = 0.6
    max_burst: int = 5
    p_occlude: float = 0.2
    p_occlude_flag: float = 0.5

    def __post_init__(self):
        for k in ("p_drop_utt", "p_drop_frames", "max_drop_rate", "p_occlude", "p_occlude_flag"):
            v = float(getattr(self, k))
            if not 0.0 <= v <= 1.0:
                raise InputError(f"visual_aug.{k} must be in [0, 1], got {v}")
            setattr(self, k, v)
        if int(self.max_burst) < 1:
            raise InputError(f"visual_aug.max_burst must be >= 1, got {self.max_burst}")

    def __call__(self, lips, mask, rel, rng: np.random.Generator):
        T = len(mask)
        if rng.random() < self.p_drop_utt:
            return lips, np.zeros_like(mask), np.zeros_like(rel)
        if rng.random() < self.p_drop_frames:
            lips, mask, rel = drop_frames(lips, mask, rel, rng, rng.uniform(0, self.max_drop_rate),
                                          int(rng.integers(1, int(self.max_burst) + 1)))
        if rng.random() < self.p_occlude and T > 0 and lips.ndim == 3:  # no pixels to cover in features
            n = int(rng.integers(max(1, T // 4), T + 1))
            s = int(rng.integers(0, T - n + 1))
            lips, mask, rel = occlude_span(lips, mask, rel, rng, cover=rng.uniform(0.5, 1.0), span=(s, s + n),
                                           flag=rng.random() < self.p_occlude_flag)
        return lips, mask, rel
