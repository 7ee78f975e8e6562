"""Mouth-box geometry shared by the face-tracking lip backends.

A mouth box is ``(cx, cy, side)`` in pixels of the video frame: the centre of a
square crop and its side. A track is ``(T, 3)`` float, one box per frame, with NaN
rows where nothing was found. This module turns face boxes into mouth boxes, fills
gaps by interpolation, smooths a track over time (a running median against outliers,
then a Gaussian against jitter) and cuts the ``(T, 88, 88)`` crops.

The mouth position inside a face box is a fixed proportion of the box, as in the
"face-box geometry" ROI of early audio-visual speech work (e.g. Potamianos et al.,
"Recent advances in the automatic recognition of audiovisual speech", Proc. IEEE
2003, where the mouth ROI is placed from the detected face when lip landmarks are
not available). The defaults were checked on OpenCV's frontal-face Haar cascade,
whose box spans about brows to chin.
"""
import numpy as np

from avse.errors import InputError

LIP_SIZE = 88

# position of the mouth centre in a face box (fractions of its width/height) and the
# side of the mouth crop (fraction of the face width)
MOUTH_X = 0.5
MOUTH_Y = 0.78
MOUTH_SIZE = 0.5


def mouth_from_face(faces: np.ndarray, mouth_x: float = MOUTH_X, mouth_y: float = MOUTH_Y,
                    mouth_size: float = MOUTH_SIZE) -> np.ndarray:
    """Face boxes ``(T, 4)`` ``[x, y, w, h]`` (pixels, NaN rows allowed) -> mouth
    boxes ``(T, 3)`` ``[cx, cy, side]`` (pixels)."""
    faces = np.asarray(faces, dtype=np.float64).reshape(-1, 4)
    x, y, w, h = faces.T
    return np.stack([x + mouth_x * w, y + mouth_y * h, mouth_size * w], axis=1)


def interpolate_missing(track: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill the rows of ``track`` ``(T, K)`` where ``valid`` ``(T,)`` is False by linear
    interpolation in time between the nearest valid rows (held constant before the
    first and after the last). Raises :class:`InputError` when no row is valid."""
    track = np.asarray(track, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool) & np.all(np.isfinite(track), axis=1)
    if not valid.any():
        raise InputError("no frame has a detection to interpolate from")
    t = np.arange(len(track))
    out = track.copy()
    for k in range(track.shape[1]):
        out[:, k] = np.interp(t, t[valid], track[valid, k])
    return out


def _running_median(x: np.ndarray, win: int) -> np.ndarray:
    """Running median over ``win`` frames (odd; edges use the shrunken window)."""
    if win <= 1 or len(x) < 3:
        return x.copy()
    r = win // 2
    pad = np.pad(x, ((r, r), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(pad, win, axis=0)  # (T, K, win)
    return np.median(windows, axis=-1)


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(x) < 2:
        return x.copy()
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x, sigma, axis=0, mode="nearest")


def smooth_track(track: np.ndarray, valid: np.ndarray, median: int = 5, sigma: float = 1.0,
                 outlier: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Fill gaps, reject outliers and smooth a mouth track over time.

    Args:
        track: ``(T, 3)`` ``[cx, cy, side]`` pixels; rows with NaN are missing.
        valid: ``(T,)`` bool, frames with a detection.
        median: running-median window (frames, odd; 1 disables it).
        sigma: Gaussian smoothing after the median (frames; 0 disables it).
        outlier: a detection whose centre is farther than ``outlier * side`` from the
            running median of the track (or whose side differs by more than that
            fraction) is dropped and treated as missing.
    Returns:
        ``(smoothed (T, 3), kept (T,) bool)``: the smooth track and the detections
        that survived the outlier test.
    """
    track = np.asarray(track, dtype=np.float64)
    if track.ndim != 2 or track.shape[1] != 3:
        raise InputError(f"a mouth track must have shape (T, 3), got {track.shape}")
    median = max(1, int(median) | 1)
    kept = np.asarray(valid, dtype=bool) & np.all(np.isfinite(track), axis=1)
    filled = interpolate_missing(track, kept)
    ref = _running_median(filled, median)
    dist = np.hypot(*(track[:, :2] - ref[:, :2]).T)
    with np.errstate(invalid="ignore"):
        bad = (dist > outlier * ref[:, 2]) | (np.abs(track[:, 2] - ref[:, 2]) > outlier * ref[:, 2])
    if (kept & ~bad).any():
        kept = kept & ~bad
        filled = interpolate_missing(track, kept)
    return _gaussian(_running_median(filled, median), sigma), kept


def box_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of the square boxes ``a`` and ``b`` ``(T, 3)``, per
    frame, in [0, 1] (0 where either is NaN)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    lo = np.maximum(a[:, :2] - a[:, 2:] / 2, b[:, :2] - b[:, 2:] / 2)
    hi = np.minimum(a[:, :2] + a[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2)
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    union = a[:, 2] ** 2 + b[:, 2] ** 2 - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    return np.nan_to_num(np.clip(iou, 0.0, 1.0)).astype(np.float32)


def crop_boxes(frames: np.ndarray, boxes: np.ndarray, size: int = LIP_SIZE) -> np.ndarray:
    """Cut square crops: ``frames`` ``(T, H, W)`` uint8 and ``boxes`` ``(T, 3)``
    ``[cx, cy, side]`` pixels -> ``(T, size, size)`` uint8. Parts outside the frame
    repeat the border pixels; a crop shrunk by more than 2x is low-passed first."""
    import cv2

    frames = np.asarray(frames)
    boxes = np.asarray(boxes, dtype=np.float64)
    if frames.ndim != 3 or len(frames) != len(boxes):
        raise InputError(f"need frames (T, H, W) and boxes (T, 3) of equal T, got {frames.shape} "
                         f"and {boxes.shape}")
    if not np.all(np.isfinite(boxes)) or np.any(boxes[:, 2] <= 1):
        raise InputError("crop boxes must be finite with a side above one pixel")
    out = np.empty((len(frames), size, size), np.uint8)
    for k, (cx, cy, side) in enumerate(boxes):
        s = size / side
        img = frames[k]
        if s < 0.5:
            img = cv2.GaussianBlur(img, (0, 0), 0.4 / s)
        # output pixel i (centre at i + 0.5 in edge coordinates) shows the input point
        # (cx - side / 2) + (i + 0.5) / s, i.e. input index j = that - 0.5
        M = np.array([[s, 0, s * (0.5 - cx + side / 2) - 0.5],
                      [0, s, s * (0.5 - cy + side / 2) - 0.5]])
        out[k] = cv2.warpAffine(img, M, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    return out


def track_to_lips(frames: np.ndarray, track: np.ndarray, score: np.ndarray, size: int = LIP_SIZE,
                  median: int = 5, sigma: float = 1.0, outlier: float = 0.25
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw per-frame mouth boxes -> smoothed crops and confidences.

    Args:
        frames: ``(T, H, W)`` uint8 at 25 fps.
        track: ``(T, 3)`` raw mouth boxes (NaN rows: nothing found in that frame).
        score: ``(T,)`` the finder's own confidence in [0, 1] (1 for a detection,
            a correlation peak for a tracker); frames with score 0 count as missing.
    Returns:
        ``(lips (T, size, size) uint8, conf (T,) float32, boxes (T, 3))``. ``conf`` is
        ``score`` times the overlap of the raw box with the smoothed one, and exactly
        0 on frames whose box was interpolated (no detection, or an outlier): these
        are the flagged frames.
    """
    score = np.clip(np.nan_to_num(np.asarray(score, dtype=np.float64)), 0.0, 1.0)
    boxes, kept = smooth_track(track, score > 0, median=median, sigma=sigma, outlier=outlier)
    lips = crop_boxes(frames, boxes, size)
    conf = np.where(kept, score * box_agreement(track, boxes), 0.0).astype(np.float32)
    return lips, conf, boxes
