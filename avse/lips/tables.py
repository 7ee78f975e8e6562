"""Lip tables of a data or dump dir, and reading one utterance's lips.

``lip.scp`` lists ``(T, 88, 88)`` uint8 ``.npy`` mouth crops at
:data:`avse.lips.backends.LIP_FPS`; the per-frame reliability ``(T,)`` float32 comes from
``lip_conf.scp`` (``rel_source: conf``, the lip front-end's confidence), ``lip_rel.scp``
(``rel``, a lip-reliability network, :mod:`avse.lips.reliability`) or none (``none``: 1
on every frame). Used by training (:mod:`avse.train.av_dataset`) and inference
(:mod:`avse.nets.lip_cond`) alike.
"""
import os
from typing import Dict, Optional, Tuple

import numpy as np

from avse.errors import InputError
from avse.io.scp import read_table

REL_SOURCES = {"conf": "lip_conf.scp", "rel": "lip_rel.scp", "none": None}


def lip_tables(data_dir: str, rel_source: str = "conf", lip_scp: str | None = None
               ) -> Dict[str, Tuple[str, Optional[str]]]:
    """``{key: (lip .npy path, reliability .npy path or None)}`` of a data dir.

    Raises :class:`InputError` when ``lip.scp`` (or the reliability table the source
    names) is missing or empty.
    """
    if rel_source not in REL_SOURCES:
        raise InputError(f"lip reliability source must be one of {sorted(REL_SOURCES)}, got {rel_source!r}")
    lip_scp = lip_scp or os.path.join(data_dir, "lip.scp")
    if not os.path.isfile(lip_scp):
        raise InputError(f"{lip_scp}: not found; an audio-visual model needs lips (dump with a lip "
                         "backend in stage 3)")
    lips = read_table(lip_scp)
    if not lips:
        raise InputError(f"{lip_scp}: empty lip.scp")
    rels: Dict[str, str] = {}
    name = REL_SOURCES[rel_source]
    if name is not None:
        rscp = os.path.join(os.path.dirname(lip_scp), name)
        if not os.path.isfile(rscp):
            hint = ("the lip-reliability network writes it" if rel_source == "rel"
                    else "stage 3 writes it with the lips")
            raise InputError(f"{rscp}: not found for lip reliability source {rel_source!r} ({hint}); "
                             "choose another source (conf, rel, none)")
        rels = read_table(rscp)
    return {k: (p, rels.get(k) if name is not None else None) for k, p in lips.items()}


def load_lips(lip_path: str, rel_path: Optional[str], key: str = "?", mmap: bool = False
              ) -> Tuple[np.ndarray, np.ndarray]:
    """``(lips (T, H, W) uint8, rel (T,) float32 in [0, 1])`` of one utterance."""
    try:
        lips = np.load(lip_path, mmap_mode="r" if mmap else None)
    except (OSError, ValueError) as e:
        raise InputError(f"utterance {key!r}: cannot read lips {lip_path}: {e}") from e
    if lips.ndim != 3 or lips.dtype != np.uint8:
        raise InputError(f"utterance {key!r}: {lip_path}: expected (T, H, W) uint8 lips, "
                         f"got {lips.shape} {lips.dtype}")
    if rel_path is None:
        rel = np.ones(len(lips), np.float32)
    else:
        try:
            rel = np.asarray(np.load(rel_path), dtype=np.float32).reshape(-1)
        except (OSError, ValueError) as e:
            raise InputError(f"utterance {key!r}: cannot read reliability {rel_path}: {e}") from e
        if len(rel) != len(lips):
            raise InputError(f"utterance {key!r}: {rel_path} has {len(rel)} values for {len(lips)} lip frames")
        rel = np.clip(np.nan_to_num(rel, nan=0.0), 0.0, 1.0)
    return lips, rel
