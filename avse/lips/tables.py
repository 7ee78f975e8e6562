"""Lip tables of a data or dump dir, and reading one utterance's lips.

``lip.scp`` lists ``(T, 88, 88)`` uint8 ``.npy`` mouth crops at
:data:`avse.lips.backends.LIP_FPS`; ``lip_feats.scp`` (or another table, for a
``features`` lip encoder, :mod:`avse.nets.lip_features`) lists ``(T, D)`` float ``.npy``
visual features at the same rate (:func:`load_visual` reads either). The per-frame
reliability ``(T,)`` float32 comes from ``lip_conf.scp`` (``rel_source: conf``, the lip
front-end's confidence), ``lip_rel.scp`` (``rel``, a lip-reliability network,
:mod:`avse.lips.reliability`) or none (``none``: 1 on every frame). Used by training
(:mod:`avse.train.av_dataset`) and inference (:mod:`avse.nets.lip_cond`) alike. The lips
of talker ``k >= 2`` of a mixture are in the per-source tables ``lip<k>.scp`` /
``lip_conf<k>.scp`` / ``lip_rel<k>.scp`` (:mod:`avse.data.sources`).
"""
import os
from typing import Dict, Optional, Tuple

import numpy as np

from avse.data.sources import source_table
from avse.errors import InputError
from avse.io.scp import read_table

REL_SOURCES = {"conf": "lip_conf.scp", "rel": "lip_rel.scp", "none": None}


def lip_tables(data_dir: str, rel_source: str = "conf", lip_scp: str | None = None, source: int = 1
               ) -> Dict[str, Tuple[str, Optional[str]]]:
    """``{key: (lip .npy path, reliability .npy path or None)}`` of a data dir: of talker
    ``source`` (1: ``lip_scp``, default ``<data_dir>/lip.scp``; ``k >= 2``: its per-source
    table, ``lip<k>.scp`` next to it, with ``lip_conf<k>.scp`` / ``lip_rel<k>.scp``).

    Raises :class:`InputError` when the lip table (or the reliability table the source
    names) is missing or empty.
    """
    if rel_source not in REL_SOURCES:
        raise InputError(f"lip reliability source must be one of {sorted(REL_SOURCES)}, got {rel_source!r}")
    first = lip_scp or os.path.join(data_dir, "lip.scp")
    lip_scp = source_table(first, source)
    if not os.path.isfile(lip_scp):
        crops = os.path.basename(first) == "lip.scp"
        how = ("dump with a lip backend in stage 3" if crops else
               "list one (T, D) float .npy of visual features per utterance, at 25 fps")
        if source > 1:
            how = (f"the lips of talker {source} of the mixture: stage 2 copies its video as "
                   f"video{source}.scp and stage 3 dumps it" if crops else
                   f"talker {source}'s visual features, as {os.path.basename(first)} lists talker 1's")
        raise InputError(f"{lip_scp}: not found; an audio-visual model needs lips ({how})")
    lips = read_table(lip_scp)
    if not lips:
        raise InputError(f"{lip_scp}: empty table")
    rels: Dict[str, str] = {}
    name = REL_SOURCES[rel_source]
    if name is not None:
        rscp = os.path.join(os.path.dirname(lip_scp), source_table(name, source))
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
        what = (" (visual features? they need lip_encoder: features, reading lip_feats.scp)"
                if lips.ndim == 2 else "")
        raise InputError(f"utterance {key!r}: {lip_path}: expected (T, H, W) uint8 lips, "
                         f"got {lips.shape} {lips.dtype}{what}")
    return lips, _reliability(rel_path, len(lips), key)


def load_features(path: str, rel_path: Optional[str], key: str = "?", mmap: bool = False,
                  dim: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(feats (T, D) float, rel (T,) float32)`` of one utterance; ``feats`` as stored
    (e.g. float16, memory-mapped with ``mmap``): :func:`as_features` converts a slice."""
    try:
        feats = np.load(path, mmap_mode="r" if mmap else None)
    except (OSError, ValueError) as e:
        raise InputError(f"utterance {key!r}: cannot read visual features {path}: {e}") from e
    if feats.ndim != 2 or not np.issubdtype(feats.dtype, np.floating):
        what = " (mouth crops? they need a crop lip encoder such as resnet_tcn, reading lip.scp)" \
            if feats.ndim == 3 else ""
        raise InputError(f"utterance {key!r}: {path}: expected (T, D) float visual features, "
                         f"got {feats.shape} {feats.dtype}{what}")
    if dim is not None and feats.shape[1] != int(dim):
        raise InputError(f"utterance {key!r}: {path} has {feats.shape[1]} features per frame; "
                         f"lip_encoder_conf.in_dim is {dim}")
    return feats, _reliability(rel_path, len(feats), key)


def as_features(feats: np.ndarray, key: str = "?", path: str = "?") -> np.ndarray:
    """``feats`` (a slice of :func:`load_features`) as float32; NaN / inf refused."""
    out = np.asarray(feats, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise InputError(f"utterance {key!r}: {path}: visual features hold NaN or inf values")
    return out


def load_visual(kind: str, path: str, rel_path: Optional[str], key: str = "?", mmap: bool = False,
                dim: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`load_lips` (``kind`` ``crops``) or :func:`load_features` (``features``,
    converted by :func:`as_features` unless ``mmap``)."""
    if kind == "crops":
        return load_lips(path, rel_path, key, mmap)
    if kind != "features":
        raise InputError(f"unknown visual input {kind!r}; expected crops or features")
    feats, rel = load_features(path, rel_path, key, mmap, dim)
    return (feats if mmap else as_features(feats, key, path)), rel


def _reliability(rel_path: Optional[str], n: int, key: str) -> np.ndarray:
    """The ``(n,)`` float32 reliability in [0, 1] of ``rel_path`` (1 without one)."""
    if rel_path is None:
        return np.ones(n, np.float32)
    try:
        rel = np.asarray(np.load(rel_path), dtype=np.float32).reshape(-1)
    except (OSError, ValueError) as e:
        raise InputError(f"utterance {key!r}: cannot read reliability {rel_path}: {e}") from e
    if len(rel) != n:
        raise InputError(f"utterance {key!r}: {rel_path} has {len(rel)} values for {n} lip frames")
    return np.clip(np.nan_to_num(rel, nan=0.0), 0.0, 1.0)
