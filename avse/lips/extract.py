"""One utterance's lips: video file -> backend -> checked arrays -> ``.npy`` files.

Shared by stage 3 (:mod:`avse.bin.dump`, which adds the audio/video length rule) and
the lips-only command :mod:`avse.bin.extract_lips`.

Per-utterance face boxes: a data dir may hold ``utt2face`` with ``<utt> <x> <y>``,
the normalised face centre (x from the left, y from the top, both in [0, 1]; e.g.
from AVSpeech's csv). It reaches the backend as the keyword ``face_xy=(x, y)``;
``haar`` uses it to choose among several faces, ``box`` starts tracking there, and
``none`` ignores it.
"""
import hashlib
import os
from typing import Optional, Tuple

import numpy as np

from avse.errors import InputError
from avse.lips.backends import LIP_BACKENDS, LIP_SIZE
from avse.utils.fileio import atomic_path

FACE_TABLE = "utt2face"


def parse_face_xy(value: str, utt: str = "") -> Tuple[float, float]:
    """``"<x> <y>"`` -> ``(x, y)`` floats in [0, 1]; InputError naming ``utt`` else."""
    parts = str(value).split()
    try:
        x, y = (float(v) for v in parts)
    except ValueError:
        raise InputError(f"{FACE_TABLE} of utterance {utt!r}: expected '<x> <y>', got {value!r}") from None
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise InputError(f"{FACE_TABLE} of utterance {utt!r}: face centre ({x}, {y}) is not in [0, 1]")
    return x, y


def extract_lips(video: str, backend: str, conf: Optional[dict] = None, utt: Optional[str] = None,
                 face_xy: Optional[Tuple[float, float]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Read ``video`` (any container PyAV decodes: mp4, avi, mpg, ...) and run the lip
    ``backend`` on it.

    Returns:
        ``(lips (T, 88, 88) uint8 at 25 fps, conf (T,) float32 in [0, 1])``.
    Raises:
        InputError naming the utterance: unreadable video, no frames, no face, or a
        backend result of the wrong shape.
    """
    from avse.io.video import read_video

    label = f"utterance {utt!r} ({video})" if utt else str(video)
    frames, fps = read_video(video, gray=True, utt=utt)
    opts = dict(conf or {})
    if face_xy is not None:
        opts["face_xy"] = tuple(face_xy)
    try:
        lips, c = LIP_BACKENDS.build(backend, frames, fps, **opts)
    except InputError as e:
        raise InputError(f"{label}: lip backend {backend!r}: {e}") from e
    size = int(opts.get("size", LIP_SIZE))
    if lips.ndim != 3 or lips.shape[1:] != (size, size) or lips.dtype != np.uint8 or len(lips) == 0:
        raise InputError(f"{label}: lip backend {backend!r} returned {lips.dtype} {lips.shape}, "
                         f"expected uint8 (T, {size}, {size})")
    c = np.asarray(c, dtype=np.float32)
    if c.shape != (len(lips),) or not np.all((c >= 0) & (c <= 1)):
        raise InputError(f"{label}: lip backend {backend!r} returned confidences of shape {c.shape} "
                         f"(need ({len(lips)},) in [0, 1])")
    return lips, c


def lip_name(video: str, n_frames: Optional[int] = None,
             face_xy: Optional[Tuple[float, float]] = None) -> str:
    """File stem for a video's lips: ``<video stem>[_<frames>]_<hash>``, where the
    hash covers the video's full path and the face centre, so that equal stems in
    different folders (``spk1/sa1.mp4``, ``spk2/sa1.mp4``) or two faces of one video
    do not collide, while mixtures sharing one video and length share one file."""
    stem = os.path.splitext(os.path.basename(video))[0]
    ident = os.path.abspath(video)
    if face_xy is not None:
        ident += f" {face_xy[0]:.4f} {face_xy[1]:.4f}"
    digest = hashlib.sha1(ident.encode("utf-8")).hexdigest()[:8]
    return f"{stem}_{n_frames}_{digest}" if n_frames is not None else f"{stem}_{digest}"


def save_lips(out_dir: str, name: str, lips: np.ndarray, conf: np.ndarray) -> Tuple[str, str]:
    """Write ``out_dir/lip/<name>.npy`` and ``out_dir/lip_conf/<name>.npy`` atomically
    (an existing file is kept: several utterances may share one video). Returns both
    paths."""
    lip_path = os.path.join(out_dir, "lip", f"{name}.npy")
    conf_path = os.path.join(out_dir, "lip_conf", f"{name}.npy")
    for path, arr in ((conf_path, conf), (lip_path, lips)):
        if not os.path.isfile(path):
            with atomic_path(path) as tmp:
                np.save(tmp, arr)
    return lip_path, conf_path
