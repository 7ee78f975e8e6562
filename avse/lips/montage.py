"""A PNG contact sheet of mouth crops, to check a lip backend by eye."""
from typing import Dict

import numpy as np

from avse.errors import InputError


def montage(clips: Dict[str, np.ndarray], per_row: int = 8, label: bool = True) -> np.ndarray:
    """One row per clip of ``per_row`` frames taken evenly over its length.

    Args:
        clips: name -> ``(T, S, S)`` uint8 crops.
    Returns:
        ``(rows * S, per_row * S)`` uint8 image; with ``label`` the name is written
        in the corner of the row's first frame.
    """
    import cv2

    rows = []
    for name, lips in clips.items():
        lips = np.asarray(lips)
        if lips.ndim != 3 or len(lips) == 0:
            raise InputError(f"{name}: crops must be (T, S, S) with T > 0, got {lips.shape}")
        idx = np.linspace(0, len(lips) - 1, per_row).round().astype(int)
        row = np.concatenate(list(lips[idx]), axis=1).copy()
        if label:
            cv2.putText(row, name[:24], (2, 10), cv2.FONT_HERSHEY_PLAIN, 0.7, 255, 1, cv2.LINE_AA)
        rows.append(row)
    if not rows:
        raise InputError("no clips to show")
    return np.concatenate(rows, axis=0)


def save_montage(path: str, clips: Dict[str, np.ndarray], per_row: int = 8) -> None:
    """Write :func:`montage` of ``clips`` as a PNG at ``path`` (atomically)."""
    import cv2

    from avse.utils.fileio import atomic_path

    with atomic_path(path) as tmp:
        if not cv2.imwrite(tmp, montage(clips, per_row)):
            raise InputError(f"{path}: cannot write the montage")
