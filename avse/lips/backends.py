"""Lip-extraction backends: video frames -> 25 fps 88x88 greyscale mouth crops.

Every backend is ``backend(frames, fps, **info) -> (lips, conf)`` with ``frames``
``(T, H, W)`` uint8 greyscale at ``fps``, ``lips`` ``(T', 88, 88)`` uint8 at 25 fps
and ``conf`` ``(T',)`` float32 in [0, 1], the per-frame confidence that the crop
shows the mouth. Backends register in :data:`LIP_BACKENDS`; ``none`` is for input
that is already a mouth crop (mini_av, pre-cropped TCD-TIMIT releases); ``haar``
(:mod:`avse.lips.haar`), ``landmarks`` (:mod:`avse.lips.landmarks`) and ``box``
(:mod:`avse.lips.track`) crop full-face video.
``info`` is the backend's configuration (``lip_conf``) plus ``face_xy`` when the data
dir has ``utt2face``; an unknown key is an error.
"""
import numpy as np

from avse.errors import InputError
from avse.utils.registry import Registry

LIP_BACKENDS = Registry("lip backend")
LIP_SIZE = 88
LIP_FPS = 25.0


def resample_frames(frames: np.ndarray, fps: float, target_fps: float = LIP_FPS) -> np.ndarray:
    """Nearest-frame resampling in time: output frame k shows the input frame whose
    span contains time ``(k + 0.5) / target_fps``."""
    if abs(fps - target_fps) < 1e-3:
        return frames
    if fps <= 0:
        raise InputError(f"invalid frame rate {fps}")
    duration = len(frames) / fps
    n_out = max(1, int(round(duration * target_fps)))
    idx = np.floor((np.arange(n_out) + 0.5) / target_fps * fps).astype(int)
    return frames[np.clip(idx, 0, len(frames) - 1)]


@LIP_BACKENDS.register("none")
def no_crop(frames: np.ndarray, fps: float, size: int = LIP_SIZE, face_xy=None) -> tuple[np.ndarray, np.ndarray]:
    """The video is already a mouth crop: check its size, resample to 25 fps
    (``face_xy``, from ``utt2face``, does not apply and is ignored)."""
    if frames.ndim != 3:
        raise InputError(f"expected greyscale frames (T, H, W), got shape {frames.shape}")
    if frames.shape[1:] != (size, size):
        raise InputError(f"video frames are {frames.shape[2]}x{frames.shape[1]}, expected {size}x{size} "
                         "mouth crops; choose a face-tracking lip backend for full-face video")
    lips = resample_frames(frames, fps)
    return lips.astype(np.uint8, copy=False), np.ones(len(lips), np.float32)


def fit_to_audio(lips: np.ndarray, conf: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad (repeating the last frame, confidence 0) or trim the lips to ``n_frames``."""
    t = len(lips)
    if t >= n_frames:
        return lips[:n_frames], conf[:n_frames]
    pad = n_frames - t
    lips = np.concatenate([lips, np.repeat(lips[-1:], pad, axis=0)])
    conf = np.concatenate([conf, np.zeros(pad, np.float32)])
    return lips, conf
