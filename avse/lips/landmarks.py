"""The ``landmarks`` lip backend: face detection + 68 facial landmarks -> mouth crops.

Per frame (at 25 fps), faces are detected and the 68 landmarks of the followed face
are fitted (:mod:`avse.lips.dlib_face`: dlib's HOG face detector and its 68-point
regression-tree predictor). The followed face is chosen like the ``haar`` backend does
(``face_xy`` from ``utt2face``, else the largest; later the one nearest to the last).
When the detector misses a frame, the landmarks are fitted again inside the last face
box moved with the face (*tracked* frames, at most ``max_track`` in a row) and kept if
their rigid shape (jaw tops, nose, eyes) still matches the last detected face within
``track_tol`` inter-ocular distances.

The mouth box is centred on the outer lip contour (points 48-59) with side
``mouth_size`` times the inter-ocular distance (eye centres; a rigid distance that
speech does not change), so the crop follows the lips rather than a fixed part of a
face box. Boxes are then filled, outlier-checked and median + Gaussian smoothed over
time as for the other backends (:func:`avse.lips.geometry.track_to_lips`).

Per-frame confidence, in [0, 1] (the ``lip_conf`` of the reliability stage):
``detection x consistency x agreement``, where detection is
``sigmoid(score / score_scale)`` of the detector's SVM margin on detected frames and
``tracked_conf`` on tracked ones; consistency is ``exp(-r^2 / (2 consistency^2))`` with
``r`` the root-mean-square distance, in inter-ocular distances, of the frame's rigid
landmarks from the clip's mean shape after a similarity alignment (Umeyama, "Least-
squares estimation of transformation parameters between two point patterns", TPAMI
1991; a generalised Procrustes mean over the detected frames); agreement is the overlap
of the raw box with the smoothed one. Frames without a face, and outliers, get 0.

Without dlib or its landmark model the backend logs a warning and runs ``haar``
instead (``fallback: false`` makes that an error).
"""
import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from avse.errors import InputError
from avse.lips.backends import LIP_BACKENDS, LIP_FPS, LIP_SIZE, resample_frames
from avse.lips.dlib_face import FaceModelsMissing, load_face_models
from avse.lips.geometry import track_to_lips
from avse.lips.haar import pick_face

log = logging.getLogger(__name__)

N_POINTS = 68
RIGID = np.r_[0:3, 14:17, 27:48]  # jaw tops, nose, eyes: points that speech hardly moves
OUTER_LIP = np.arange(48, 60)
LEFT_EYE, RIGHT_EYE = np.arange(36, 42), np.arange(42, 48)
NONE, DETECTED, TRACKED = 0, 1, 2  # per-frame status
MOUTH_SIZE_IOD = 1.5  # crop side / inter-ocular distance (about the haar crop on GRID)
_warned: set = set()


@dataclass
class LandmarkTrack:
    """``points (T, 68, 2)`` pixels (NaN where no face), ``score (T,)`` detector margin
    (NaN unless detected), ``status (T,)`` int8: NONE, DETECTED or TRACKED."""
    points: np.ndarray
    score: np.ndarray
    status: np.ndarray


def inter_ocular(points: np.ndarray) -> np.ndarray:
    """Distance between the eye centres of ``(..., 68, 2)`` landmarks -> ``(...)``."""
    d = points[..., LEFT_EYE, :].mean(-2) - points[..., RIGHT_EYE, :].mean(-2)
    return np.hypot(d[..., 0], d[..., 1])


def mouth_boxes(points: np.ndarray, mouth_size: float = MOUTH_SIZE_IOD) -> np.ndarray:
    """Landmarks ``(T, 68, 2)`` -> mouth boxes ``(T, 3)`` ``[cx, cy, side]`` (NaN rows
    where the landmarks are NaN)."""
    centre = points[:, OUTER_LIP].mean(1)
    return np.concatenate([centre, (mouth_size * inter_ocular(points))[:, None]], 1)


def similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, scale, shift) of each shape in
    ``src`` ``(T, N, 2)`` onto ``dst`` ``(N, 2)`` (Umeyama 1991); returns the moved
    ``src`` ``(T, N, 2)``."""
    mu_s, mu_d = src.mean(1, keepdims=True), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = np.einsum("ni,tnj->tij", d, s) / src.shape[1]  # (T, 2, 2)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt))
    fix = np.stack([np.ones_like(sign), sign], -1)  # reflection guard
    rot = u @ (fix[:, :, None] * vt)
    var = np.maximum((s ** 2).sum(-1).mean(-1), 1e-12)
    c = (sig * fix).sum(-1) / var
    return c[:, None, None] * np.einsum("tij,tnj->tni", rot, s) + mu_d


def mean_shape(points: np.ndarray, iters: int = 3) -> np.ndarray:
    """Generalised Procrustes mean ``(N, 2)`` of shapes ``(T, N, 2)`` (no NaN),
    scaled to an inter-ocular distance of 1 when the shapes are full 68-point ones."""
    ref = points[0] - points[0].mean(0)
    for _ in range(iters):
        ref = similarity_align(points, ref).mean(0)
        ref = ref - ref.mean(0)
        scale = inter_ocular(ref) if ref.shape[0] == N_POINTS else np.sqrt((ref ** 2).sum(-1).mean())
        ref = ref / max(float(scale), 1e-9)
    return ref


def shape_residual(points: np.ndarray, ref: np.ndarray, idx: np.ndarray = RIGID) -> np.ndarray:
    """RMS distance ``(T,)`` of the ``idx`` points of ``points`` ``(T, 68, 2)`` from
    ``ref`` ``(68, 2)`` after similarity alignment, in units of the inter-ocular
    distance of ``ref`` (NaN for NaN shapes)."""
    out = np.full(len(points), np.nan)
    ok = np.all(np.isfinite(points), axis=(1, 2))
    if ok.any():
        r = ref / inter_ocular(ref)
        moved = similarity_align(points[ok][:, idx], r[idx])
        out[ok] = np.sqrt(((moved - r[idx]) ** 2).sum(-1).mean(-1))
    return out


def landmark_track(frames: np.ndarray, model, face_xy: Optional[Sequence[float]] = None,
                   upsample: int = 0, detect_max_side: int = 640, max_jump: float = 0.5,
                   first_jump: float = 1.0, max_track: int = 12, track_tol: float = 0.08) -> LandmarkTrack:
    """Landmarks of one face through ``frames`` ``(T, H, W)`` uint8 (module docstring).

    ``model`` has ``detect(img, upsample) -> (boxes (N, 4), scores (N,))`` and
    ``fit(img, box) -> (68, 2)`` (:class:`avse.lips.dlib_face.DlibFace`). Detection runs
    on a copy whose longer side is at most ``detect_max_side`` pixels; ``max_jump`` /
    ``first_jump``: as in :func:`avse.lips.haar.face_track` (face widths).
    """
    import cv2

    T, H, W = frames.shape
    f = min(1.0, detect_max_side / max(H, W))
    pts = np.full((T, N_POINTS, 2), np.nan)
    score = np.full(T, np.nan)
    status = np.zeros(T, np.int8)
    ref = None if face_xy is None else np.array([face_xy[0] * W, face_xy[1] * H], float)
    last = None  # last frame with a face
    box = offset = shape0 = None  # box and box-centre - landmark-centroid of the last detection
    run = 0  # tracked frames in a row
    for k in range(T):
        img = frames[k] if f == 1.0 else cv2.resize(frames[k], (round(W * f), round(H * f)),
                                                     interpolation=cv2.INTER_AREA)
        boxes, scores = model.detect(img, upsample)
        boxes = boxes / f
        face = pick_face(boxes, ref)
        if face is not None and ref is not None:
            limit = first_jump if last is None else max_jump * (k - last)
            if np.hypot(*(face[:2] + face[2:] / 2 - ref)) > limit * face[2]:
                face = None
        if face is not None:
            p = model.fit(frames[k], face)
            i = int(np.argmin(np.abs(boxes - face).sum(1)))
            pts[k], score[k], status[k] = p, scores[i], DETECTED
            box, offset, shape0, run = face, face[:2] + face[2:] / 2 - p.mean(0), p, 0
        elif box is not None and last == k - 1 and run < max_track:
            centre = pts[k - 1].mean(0) + offset
            p = model.fit(frames[k], np.r_[centre - box[2:] / 2, box[2:]])
            if shape_residual(p[None], shape0)[0] > track_tol:
                box = None  # the fit no longer looks like the face: stop until a detection
                continue
            pts[k], status[k], run = p, TRACKED, run + 1
        else:
            continue
        ref, last = pts[k].mean(0) + offset, k
    return LandmarkTrack(pts, score, status)


def landmark_conf(track: LandmarkTrack, score_scale: float = 0.5, tracked_conf: float = 0.5,
                  consistency: float = 0.06) -> np.ndarray:
    """Per-frame confidence before the smoothing check, ``(T,)`` float in [0, 1]
    (module docstring)."""
    found = track.status != NONE
    conf = np.zeros(len(found))
    if not found.any():
        return conf
    det = track.status == DETECTED
    basis = track.points[det if det.sum() >= 3 else found]
    r = shape_residual(track.points, mean_shape(basis))
    cons = np.exp(-0.5 * (np.nan_to_num(r, nan=np.inf) / consistency) ** 2)
    with np.errstate(over="ignore"):
        d = 1.0 / (1.0 + np.exp(-np.nan_to_num(track.score) / score_scale))
    conf[det] = d[det] * cons[det]
    tr = track.status == TRACKED
    conf[tr] = tracked_conf * cons[tr]
    return np.clip(conf, 0.0, 1.0)


def landmark_lips(frames: np.ndarray, fps: float, model, face_xy=None, mouth_size: float = MOUTH_SIZE_IOD,
                  score_scale: float = 0.5, tracked_conf: float = 0.5, consistency: float = 0.06,
                  median: int = 5, sigma: float = 1.0, outlier: float = 0.25, size: int = LIP_SIZE,
                  **track_opts) -> tuple[np.ndarray, np.ndarray, np.ndarray, LandmarkTrack]:
    """Video ``(T, H, W)`` uint8 at ``fps`` -> ``(lips (T', size, size) uint8, conf (T',)
    float32, boxes (T', 3) smoothed mouth boxes, LandmarkTrack)`` at 25 fps."""
    if frames.ndim != 3:
        raise InputError(f"expected greyscale frames (T, H, W), got shape {frames.shape}")
    frames = resample_frames(frames, fps, LIP_FPS)
    track = landmark_track(frames, model, face_xy, **track_opts)
    if not np.any(track.status != NONE):
        raise InputError(f"no face found by the landmark detector in any of {len(frames)} frames "
                         f"({frames.shape[2]}x{frames.shape[1]})")
    raw = mouth_boxes(track.points, mouth_size)
    score = landmark_conf(track, score_scale, tracked_conf, consistency)
    lips, conf, boxes = track_to_lips(frames, raw, score, size=size, median=median, sigma=sigma,
                                      outlier=outlier)
    return lips, conf, boxes, track


def _fallback(reason: str, frames, fps, face_xy, opts: dict):
    """The ``haar`` backend with the options both share, warned once per reason."""
    from avse.lips.haar import haar

    if reason not in _warned:
        _warned.add(reason)
        log.warning("lip backend 'landmarks' unavailable: %s; using the 'haar' backend instead "
                    "(landmark-specific options do not apply)", reason)
    return haar(frames, fps, face_xy=face_xy, **opts)


@LIP_BACKENDS.register("landmarks")
def landmarks_backend(frames: np.ndarray, fps: float, face_xy: Optional[Sequence[float]] = None,
                      predictor: Optional[str] = None, fallback: bool = True,
                      mouth_size: float = MOUTH_SIZE_IOD, score_scale: float = 0.5,
                      tracked_conf: float = 0.5, consistency: float = 0.06, upsample: int = 0,
                      detect_max_side: int = 640, max_jump: float = 0.5, max_track: int = 12,
                      track_tol: float = 0.08, median: int = 5, sigma: float = 1.0,
                      outlier: float = 0.25, size: int = LIP_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Full-face video ``(T, H, W)`` uint8 at ``fps`` -> 25 fps mouth crops
    ``(T', size, size)`` uint8 and confidences ``(T',)`` float32 (module docstring).
    ``predictor``: a 68-point dlib model file instead of the packaged one."""
    common = dict(median=median, sigma=sigma, outlier=outlier, size=size)
    try:
        model = load_face_models(predictor)
    except FaceModelsMissing as e:
        if not fallback:
            raise InputError(f"lip backend 'landmarks': {e}") from None
        return _fallback(str(e), frames, fps, face_xy, common)
    lips, conf, _, _ = landmark_lips(frames, fps, model, face_xy, mouth_size=mouth_size,
                                     score_scale=score_scale, tracked_conf=tracked_conf,
                                     consistency=consistency, upsample=upsample,
                                     detect_max_side=detect_max_side, max_jump=max_jump,
                                     max_track=max_track, track_tol=track_tol, **common)
    return lips, conf
