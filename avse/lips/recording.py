"""The lips of one recording for an audio-visual model, window by window.

Where a recording's video is (:func:`find_video`): ``VIDEO_DIR/<relative path without
extension>.<ext>``, else ``VIDEO_DIR/<stem>.<ext>``, for ``ext`` in :data:`VIDEO_EXTS`
in that order. A ``.npy`` file holds mouth crops already (``(T, 88, 88)`` uint8 at 25 fps,
as ``lip.scp`` lists; memory-mapped, reliability 1); a video goes through a lip backend
(:func:`avse.lips.extract.extract_lips`, e.g. ``haar``; reliability: its per-frame
confidence), which decodes the whole video.

The recording needs ``ceil(duration * 25)`` frames. A video up to ``max_mismatch``
seconds shorter or longer is padded (its last frame repeated, reliability 0) or cut, as
stage 3 does; beyond that it is an :class:`~avse.errors.InputError` naming both files.
Without a video, every frame is marked missing (mask False, reliability 0), how the
prior saw dropped video in training.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from avse.errors import InputError
from avse.lips.backends import LIP_FPS, LIP_SIZE

VIDEO_EXTS = (".npy", ".mp4", ".avi", ".mov", ".mkv", ".webm")


def find_video(video_dir: str, rel_stem: str) -> Optional[str]:
    """The video of the recording ``rel_stem`` (its path relative to the input, without
    extension) in ``video_dir``, or None."""
    for stem in dict.fromkeys([rel_stem, os.path.basename(rel_stem)]):
        for ext in VIDEO_EXTS:
            p = os.path.join(video_dir, stem + ext)
            if os.path.isfile(p):
                return p
    return None


class RecordingLips:
    """Lips of ``n_frames`` frames: ``lips (T, H, W)`` uint8 and ``rel (T,)`` (padded or cut
    to ``n_frames``), or None for a recording without video."""

    def __init__(self, n_frames: int, lips: np.ndarray | None = None, rel: np.ndarray | None = None):
        self.n_frames, self.lips, self.rel = int(n_frames), lips, rel

    @property
    def missing(self) -> bool:
        return self.lips is None

    def window(self, f0: int, f1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frames ``f0 .. f1 - 1``: ``(lips (n, H, W) uint8, mask (n,) bool, rel (n,) float32)``;
        frames beyond the video repeat its last one with reliability 0."""
        n = max(0, f1 - f0)
        if self.lips is None:
            return (np.zeros((n, LIP_SIZE, LIP_SIZE), np.uint8), np.zeros(n, bool), np.zeros(n, np.float32))
        idx = np.arange(f0, f0 + n)
        inside = idx < len(self.lips)
        lips = np.asarray(self.lips[np.minimum(idx, len(self.lips) - 1)])
        rel = np.where(inside, self.rel[np.minimum(idx, len(self.rel) - 1)], 0.0).astype(np.float32)
        return lips, np.ones(n, bool), rel


def recording_lips(video: Optional[str], n_frames: int, backend: str = "haar", conf: dict | None = None,
                   max_mismatch: float = 0.5, rel_source: str = "conf", label: str = "") -> RecordingLips:
    """The lips of a recording (module docstring). ``rel_source``: ``conf`` (the backend's
    confidence; 1 for ``.npy`` crops) or ``none`` (1 everywhere)."""
    if video is None:
        return RecordingLips(n_frames)
    if video.endswith(".npy"):
        try:
            lips = np.load(video, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise InputError(f"{video}: unreadable lips array: {e}") from e
        if lips.ndim != 3 or lips.dtype != np.uint8 or len(lips) == 0:
            raise InputError(f"{video}: expected (T, {LIP_SIZE}, {LIP_SIZE}) uint8 mouth crops, "
                             f"got {lips.dtype} {lips.shape}")
        rel = np.ones(len(lips), np.float32)
    else:
        from avse.lips.extract import extract_lips
        lips, rel = extract_lips(video, backend, conf or {}, utt=label or None)
    if lips.shape[1:] != (LIP_SIZE, LIP_SIZE):
        raise InputError(f"{video}: mouth crops are {lips.shape[2]}x{lips.shape[1]}, the models take "
                         f"{LIP_SIZE}x{LIP_SIZE}")
    diff = (len(lips) - n_frames) / LIP_FPS
    if abs(diff) > max_mismatch:
        raise InputError(f"{video}: {len(lips)} video frames ({len(lips) / LIP_FPS:.2f} s) for "
                         f"{label or 'the audio'} of {n_frames / LIP_FPS:.2f} s: they differ by more than "
                         f"{max_mismatch} s (--max_av_mismatch)")
    if rel_source == "none":
        rel = np.ones(len(lips), np.float32)
    return RecordingLips(n_frames, lips[:n_frames], np.asarray(rel, np.float32)[:n_frames])
