"""The ``box`` lip backend: a given box, followed by template matching.

The start box is either a fixed mouth box (``box: [cx, cy, side]``, fractions of the
frame width/height/height) or comes from a face centre (``face_xy`` keyword, e.g. the
normalised face centre of an AVSpeech clip from ``utt2face``, with ``face_size`` the
face height as a fraction of the frame height) through the same face-box geometry as
the ``haar`` backend. With ``track: true`` the lower face around the box is then
followed from frame to frame by normalised cross-correlation template matching
(Lewis, "Fast normalized cross-correlation", Vision Interface 1995; OpenCV's
``TM_CCOEFF_NORMED``) within a search window; the template is updated slowly
(running average) so it follows the mouth opening and closing, and the correlation
peak is the frame's confidence. The box size stays fixed (no scale tracking).
"""
from typing import Optional, Sequence

import numpy as np

from avse.errors import InputError
from avse.lips.backends import LIP_BACKENDS, LIP_FPS, LIP_SIZE, resample_frames
from avse.lips.geometry import (MOUTH_SIZE, MOUTH_X, MOUTH_Y, crop_boxes, mouth_from_face,
                                 track_to_lips)


def start_box(shape: tuple, box: Optional[Sequence[float]] = None,
              face_xy: Optional[Sequence[float]] = None, face_size: float = 0.4,
              mouth_x: float = MOUTH_X, mouth_y: float = MOUTH_Y,
              mouth_size: float = MOUTH_SIZE) -> np.ndarray:
    """The first mouth box ``[cx, cy, side]`` in pixels of a ``(H, W)`` frame."""
    H, W = shape
    if box is not None:
        if len(box) != 3:
            raise InputError(f"box must be [cx, cy, side] (fractions of width, height, height), got {box}")
        cx, cy, side = (float(v) for v in box)
        return np.array([cx * W, cy * H, side * H])
    if face_xy is None:
        raise InputError("the box lip backend needs a box ([cx, cy, side] in lip_conf) or a face "
                         "centre (utt2face)")
    fx, fy = (float(v) for v in face_xy)
    if not (0 <= fx <= 1 and 0 <= fy <= 1):
        raise InputError(f"face centre {face_xy} is not normalised to [0, 1]")
    fh = face_size * H
    face = np.array([[fx * W - fh / 2, fy * H - fh / 2, fh, fh]])
    return mouth_from_face(face, mouth_x, mouth_y, mouth_size)[0]


def _patch_rect(c: np.ndarray, half: float, shape: tuple) -> tuple:
    """Integer rectangle (x0, y0, x1, y1) of side 2*half around centre c, clipped."""
    H, W = shape
    x0, y0 = int(round(c[0] - half)), int(round(c[1] - half))
    x1, y1 = x0 + int(round(2 * half)), y0 + int(round(2 * half))
    return max(0, x0), max(0, y0), min(W, x1), min(H, y1)


def track_box(frames: np.ndarray, box0: np.ndarray, context: float = 1.6, search: float = 0.5,
              update: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Follow ``box0`` ``[cx, cy, side]`` through ``frames`` ``(T, H, W)``.

    Args:
        context: the template is the square of ``context * side`` around the box
            (lower face: more texture than the mouth alone).
        search: the template is looked for within ``search * side`` pixels of the
            last position.
        update: weight of the new patch in the running-average template.
    Returns:
        ``(track (T, 3), score (T,))``: boxes and correlation peaks in [0, 1]
        (negative correlations count as 0: the box is kept where it was).
    """
    import cv2

    T = len(frames)
    shape = frames.shape[1:]
    half = context * box0[2] / 2
    x0, y0, x1, y1 = _patch_rect(box0[:2], half, shape)
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise InputError(f"mouth box {box0.round(1).tolist()} lies outside the {shape[1]}x{shape[0]} frame")
    tmpl = frames[0, y0:y1, x0:x1].astype(np.float32)
    off = np.array([box0[0] - x0, box0[1] - y0])  # box centre inside the template
    track = np.tile(box0, (T, 1)).astype(np.float64)
    score = np.ones(T)
    pos = np.array([x0, y0], float)
    th, tw = tmpl.shape
    r = int(np.ceil(search * box0[2]))
    for k in range(1, T):
        sx0, sy0 = int(max(0, pos[0] - r)), int(max(0, pos[1] - r))
        sx1, sy1 = int(min(shape[1], pos[0] + tw + r)), int(min(shape[0], pos[1] + th + r))
        win = frames[k, sy0:sy1, sx0:sx1].astype(np.float32)
        if win.shape[0] < th or win.shape[1] < tw:
            score[k] = 0.0  # the template left the frame: hold the box
            track[k] = track[k - 1]
            continue
        res = cv2.matchTemplate(win, tmpl, cv2.TM_CCOEFF_NORMED)
        _, peak, _, loc = cv2.minMaxLoc(res)
        score[k] = max(0.0, float(peak)) if np.isfinite(peak) else 0.0
        if score[k] > 0:
            pos = np.array([sx0 + loc[0], sy0 + loc[1]], float)
            new = frames[k, int(pos[1]):int(pos[1]) + th, int(pos[0]):int(pos[0]) + tw]
            tmpl = (1 - update) * tmpl + update * new.astype(np.float32)
        track[k, :2] = pos + off
    return track, score


@LIP_BACKENDS.register("box")
def box_backend(frames: np.ndarray, fps: float, box: Optional[Sequence[float]] = None,
                face_xy: Optional[Sequence[float]] = None, face_size: float = 0.4, track: bool = True,
                context: float = 1.6, search: float = 0.5, update: float = 0.1,
                mouth_x: float = MOUTH_X, mouth_y: float = MOUTH_Y, mouth_size: float = MOUTH_SIZE,
                median: int = 5, sigma: float = 1.0, outlier: float = 0.25, size: int = LIP_SIZE
                ) -> tuple[np.ndarray, np.ndarray]:
    """Video ``(T, H, W)`` uint8 at ``fps`` -> 25 fps crops ``(T', size, size)``
    uint8 and confidences ``(T',)`` float32 (the correlation peak with the template;
    1 everywhere for a fixed box, ``track: false``)."""
    if frames.ndim != 3:
        raise InputError(f"expected greyscale frames (T, H, W), got shape {frames.shape}")
    frames = resample_frames(frames, fps, LIP_FPS)
    box0 = start_box(frames.shape[1:], box, face_xy, face_size, mouth_x, mouth_y, mouth_size)
    if not track:
        boxes = np.tile(box0, (len(frames), 1))
        return crop_boxes(frames, boxes, size), np.ones(len(frames), np.float32)
    raw, score = track_box(frames, box0, context=context, search=search, update=update)
    lips, conf, _ = track_to_lips(frames, raw, score, size=size, median=median, sigma=sigma,
                                  outlier=outlier)
    return lips, conf
