"""Synthetic talking-face video with a known mouth position (test data for the lip
backends).

A frontal face is drawn as a bright oval with dark brows and eyes, nostrils and a
mouth whose opening follows a given trajectory, on a darker textured background,
slightly blurred, with sensor noise. OpenCV's frontal-face Haar cascade fires on it
(its Haar features respond to the dark eye band over bright cheeks and the bright
nose bridge, which the drawing has), so the ``haar`` backend can be checked end to
end against the true mouth centre.
"""
from typing import Optional

import numpy as np

from avse.errors import InputError

# mouth centre below the face centre, in units of the face scale ``s``
MOUTH_DY = 0.5


def draw_face(canvas: np.ndarray, cx: float, cy: float, s: float, mouth_open: float = 0.0,
              skin: float = 185.0) -> None:
    """Draw one face in place on a float32 ``(H, W)`` canvas: centre ``(cx, cy)``
    pixels, scale ``s`` (half width of the face is ``0.78 s``, half height
    ``1.05 s``), ``mouth_open`` in [0, 1]."""
    import cv2

    def pt(x, y):
        return int(round(x)), int(round(y))

    def ax(a, b):
        return max(1, int(round(a))), max(1, int(round(b)))

    cv2.ellipse(canvas, pt(cx, cy), ax(0.78 * s, 1.05 * s), 0, 0, 360, skin, -1, cv2.LINE_AA)
    for side in (-1, 1):
        ex, ey = cx + side * 0.33 * s, cy - 0.22 * s
        cv2.ellipse(canvas, pt(ex, ey - 0.2 * s), ax(0.2 * s, 0.05 * s), 0, 0, 360, skin * 0.38, -1, cv2.LINE_AA)
        cv2.ellipse(canvas, pt(ex, ey), ax(0.16 * s, 0.08 * s), 0, 0, 360, skin * 0.32, -1, cv2.LINE_AA)
        cv2.ellipse(canvas, pt(cx + side * 0.1 * s, cy + 0.22 * s), ax(0.06 * s, 0.035 * s), 0, 0, 360,
                    skin * 0.6, -1, cv2.LINE_AA)
    my = cy + MOUTH_DY * s
    o = float(np.clip(mouth_open, 0.0, 1.0))
    cv2.ellipse(canvas, pt(cx, my), ax(0.28 * s, (0.08 + 0.1 * o) * s), 0, 0, 360, skin * 0.55, -1, cv2.LINE_AA)
    if o > 0.05:
        cv2.ellipse(canvas, pt(cx, my), ax(0.2 * s, 0.1 * o * s), 0, 0, 360, skin * 0.12, -1, cv2.LINE_AA)


def talking_face(n_frames: int, height: int = 288, width: int = 360, path: Optional[np.ndarray] = None,
                 scale: float = 60.0, mouth_open: Optional[np.ndarray] = None, noise: float = 2.0,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Render a talking-face clip.

    Args:
        n_frames: number of frames ``T``.
        path: ``(T, 2)`` face centres (pixels); default: the frame centre with a
            slow sway of a few pixels.
        scale: face scale ``s`` (pixels); the Haar face box is about ``2.2 s`` wide.
        mouth_open: ``(T,)`` in [0, 1]; default: a 3 Hz open/close cycle.
        noise: sensor noise standard deviation (grey levels).
    Returns:
        ``(frames (T, H, W) uint8, mouth (T, 2) float)``: the frames and the true
        mouth centre in each (pixels).
    """
    import cv2

    if n_frames <= 0:
        raise InputError(f"n_frames must be positive, got {n_frames}")
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)
    if path is None:
        path = np.stack([width / 2 + 6 * np.sin(2 * np.pi * t / 50), height / 2 + 3 * np.sin(2 * np.pi * t / 37)], 1)
    path = np.asarray(path, dtype=np.float64)
    if path.shape != (n_frames, 2):
        raise InputError(f"path must have shape ({n_frames}, 2), got {path.shape}")
    if mouth_open is None:
        mouth_open = 0.5 - 0.5 * np.cos(2 * np.pi * 3.0 * t / 25.0)
    bg = cv2.GaussianBlur(rng.normal(90, 25, (height, width)).astype(np.float32), (0, 0), 6)
    frames = np.empty((n_frames, height, width), np.uint8)
    for k in range(n_frames):
        canvas = bg.copy()
        draw_face(canvas, path[k, 0], path[k, 1], scale, mouth_open[k])
        canvas = cv2.GaussianBlur(canvas, (0, 0), 1.5)
        canvas += rng.normal(0, noise, canvas.shape).astype(np.float32)
        frames[k] = np.clip(np.rint(canvas), 0, 255)
    mouth = path + np.array([0.0, MOUTH_DY * scale])
    return frames, mouth
