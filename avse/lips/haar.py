"""The ``haar`` lip backend: OpenCV Haar-cascade face detection + face-box geometry.

Faces are found per frame with the Viola-Jones detector (Viola & Jones, "Rapid object
detection using a boosted cascade of simple features", CVPR 2001) and the frontal-face
cascade that ships inside the opencv-python wheel (``cv2.data.haarcascades``; nothing
is downloaded). The mouth box is a fixed part of the face box
(:func:`avse.lips.geometry.mouth_from_face`); boxes are smoothed over time, frames
without a detection are filled by interpolation and get confidence 0.

Speed: detection runs on a copy of the frame scaled so that its longer side is at
most ``detect_max_side`` pixels; on 360x288 GRID video it costs about 10-15 ms per
frame on one CPU core.
"""
import os
from typing import Optional, Sequence

import numpy as np

from avse.errors import InputError
from avse.lips.backends import LIP_BACKENDS, LIP_FPS, LIP_SIZE, resample_frames
from avse.lips.geometry import MOUTH_SIZE, MOUTH_X, MOUTH_Y, mouth_from_face, track_to_lips

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
_CASCADES: dict = {}


def load_cascade(name: str = DEFAULT_CASCADE):
    """A ``cv2.CascadeClassifier`` from a file name in ``cv2.data.haarcascades`` or a
    path (cached per process)."""
    import cv2

    path = name if os.path.isfile(name) else os.path.join(cv2.data.haarcascades, name)
    if path not in _CASCADES:
        if not os.path.isfile(path):
            raise InputError(f"Haar cascade {name!r} not found (looked in {cv2.data.haarcascades})")
        c = cv2.CascadeClassifier(path)
        if c.empty():
            raise InputError(f"{path}: not a valid Haar cascade")
        _CASCADES[path] = c
    return _CASCADES[path]


def detect_faces(frame: np.ndarray, cascade, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_face: float = 0.15, detect_max_side: int = 480) -> np.ndarray:
    """All faces in one ``(H, W)`` uint8 frame: ``(N, 4)`` ``[x, y, w, h]`` float in
    pixels of the original frame (``min_face``: smallest face side as a fraction of
    the shorter frame side)."""
    import cv2

    h, w = frame.shape
    f = min(1.0, detect_max_side / max(h, w))
    img = frame if f == 1.0 else cv2.resize(frame, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    side = max(12, int(min_face * min(img.shape)))
    found = cascade.detectMultiScale(img, scaleFactor=scale_factor, minNeighbors=min_neighbors,
                                     minSize=(side, side))
    return np.asarray(found, dtype=np.float64).reshape(-1, 4) / f


def pick_face(faces: np.ndarray, ref: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """The face to follow among ``faces`` ``(N, 4)``: the one whose centre is nearest
    to ``ref`` (``(x, y)`` pixels, relative to its size), else the largest."""
    if len(faces) == 0:
        return None
    if ref is None:
        return faces[np.argmax(faces[:, 2] * faces[:, 3])]
    centres = faces[:, :2] + faces[:, 2:] / 2
    d = np.hypot(*(centres - ref).T) / faces[:, 2]
    return faces[np.argmin(d)]


def face_track(frames: np.ndarray, face_xy: Optional[Sequence[float]] = None,
               cascade: str = DEFAULT_CASCADE, max_jump: float = 0.5, first_jump: float = 1.0,
               **detect) -> np.ndarray:
    """Per-frame face boxes ``(T, 4)`` (NaN rows: no face) of one person.

    With ``face_xy`` (normalised face centre, e.g. from AVSpeech) the face nearest to
    it is taken, if its centre is within ``first_jump`` face widths of it; otherwise
    the largest face of the first frame with a face. Later frames take the face
    nearest to the last one; a face whose centre moved by more than ``max_jump``
    face widths per frame since the last accepted face counts as no face.
    """
    c = load_cascade(cascade)
    T, H, W = frames.shape
    ref = None if face_xy is None else np.array([face_xy[0] * W, face_xy[1] * H], float)
    out = np.full((T, 4), np.nan)
    last = None  # frame of the last accepted face
    for k in range(T):
        face = pick_face(detect_faces(frames[k], c, **detect), ref)
        if face is None:
            continue
        centre = face[:2] + face[2:] / 2
        if ref is not None:
            # the allowed move grows with the frames since the face was last seen
            limit = first_jump if last is None else max_jump * (k - last)
            if np.hypot(*(centre - ref)) > limit * face[2]:
                continue
        out[k] = face
        ref, last = centre, k
    return out


def haar_lips(frames: np.ndarray, fps: float, face_xy: Optional[Sequence[float]] = None,
              cascade: str = DEFAULT_CASCADE, scale_factor: float = 1.1, min_neighbors: int = 5,
              min_face: float = 0.15, detect_max_side: int = 480, max_jump: float = 0.5,
              mouth_x: float = MOUTH_X, mouth_y: float = MOUTH_Y, mouth_size: float = MOUTH_SIZE,
              median: int = 5, sigma: float = 1.0, outlier: float = 0.25, size: int = LIP_SIZE
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`haar` with the smoothed mouth boxes ``(T', 3)`` as a third result."""
    if frames.ndim != 3:
        raise InputError(f"expected greyscale frames (T, H, W), got shape {frames.shape}")
    frames = resample_frames(frames, fps, LIP_FPS)
    faces = face_track(frames, face_xy, cascade, max_jump=max_jump, scale_factor=scale_factor,
                       min_neighbors=min_neighbors, min_face=min_face, detect_max_side=detect_max_side)
    found = np.all(np.isfinite(faces), axis=1)
    if not found.any():
        raise InputError(f"no face found by the Haar cascade in any of {len(frames)} frames "
                         f"({frames.shape[2]}x{frames.shape[1]})")
    track = mouth_from_face(faces, mouth_x, mouth_y, mouth_size)
    return track_to_lips(frames, track, found.astype(float), size=size, median=median,
                         sigma=sigma, outlier=outlier)


@LIP_BACKENDS.register("haar")
def haar(frames: np.ndarray, fps: float, face_xy: Optional[Sequence[float]] = None,
         cascade: str = DEFAULT_CASCADE, scale_factor: float = 1.1, min_neighbors: int = 5,
         min_face: float = 0.15, detect_max_side: int = 480, max_jump: float = 0.5,
         mouth_x: float = MOUTH_X, mouth_y: float = MOUTH_Y, mouth_size: float = MOUTH_SIZE,
         median: int = 5, sigma: float = 1.0, outlier: float = 0.25, size: int = LIP_SIZE
         ) -> tuple[np.ndarray, np.ndarray]:
    """Full-face video ``(T, H, W)`` uint8 at ``fps`` -> 25 fps mouth crops
    ``(T', size, size)`` uint8 and confidences ``(T',)`` float32 (0: no detection,
    box interpolated). Raises :class:`InputError` when no frame has a face."""
    lips, conf, _ = haar_lips(frames, fps, face_xy, cascade, scale_factor, min_neighbors, min_face,
                              detect_max_side, max_jump, mouth_x, mouth_y, mouth_size, median, sigma,
                              outlier, size)
    return lips, conf
