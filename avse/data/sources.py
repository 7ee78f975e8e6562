"""Per-source table names of a K-talker data dir.

A mixture of ``K`` talkers keeps the tables of talker 1 (the target) under their usual
names (``video.scp``, ``lip.scp``, ``lip_conf.scp``, ``utt2face``, ``lip_feats.scp``) and
those of talker ``k >= 2`` under the same name with ``k`` appended to the stem:
``video2.scp``, ``lip2.scp``, ``lip_conf2.scp``, ``utt2face2``, ``lip_feats2.scp``. This
is how stage 2 (:mod:`avse.simulate.simulator`) names the interferers' video, stage 3
(:mod:`avse.bin.dump`) their lips, and how an audio-visual prior finds the lips of each
source it separates (:mod:`avse.nets.lip_cond`). (The audio references ``spk1.scp`` ..
``spkK.scp`` number every talker, the target included: their names are older.)

The other direction, estimates: a method with K > 1 outputs (:mod:`avse.bin.enhance`)
writes ``spk1.scp`` .. ``spkK.scp`` and :data:`ESTIMATES_FILE` (``sources.json``:
``{"n_sources": K, "assignment": "fixed" | "pit", "lip_sources": ...}``). ``fixed``:
output k is talker k's by construction (each source conditioned on its own talker's
lips) and is scored against ``spk<k>.scp`` as it is; ``pit``: the outputs come in no
particular order and scoring chooses the permutation (:mod:`avse.bin.score`).
"""
import json
import os
from typing import Iterable, List, Optional

from avse.errors import InputError

ESTIMATES_FILE = "sources.json"
ASSIGNMENTS = ("pit", "fixed")


def source_table(name: str, k: int) -> str:
    """The name of table ``name`` (talker 1's) for talker ``k`` (1-based):
    ``source_table("video.scp", 2) == "video2.scp"``, ``source_table("utt2face", 3) ==
    "utt2face3"``, ``source_table("lip.scp", 1) == "lip.scp"``. A path keeps its folder."""
    if int(k) < 1:
        raise ValueError(f"talker index must be >= 1, got {k}")
    if k == 1:
        return name
    folder, base = os.path.split(name)
    stem, ext = (base[:-4], ".scp") if base.endswith(".scp") else (base, "")
    return os.path.join(folder, f"{stem}{int(k)}{ext}")


def source_indices(name: str, present: Iterable[str]) -> List[int]:
    """Talkers ``k >= 2`` whose table of ``name`` is among ``present`` (table names), in
    order and without gaps: ``[2, 3]`` for ``video2.scp`` and ``video3.scp``."""
    present = set(present)
    out, k = [], 2
    while source_table(name, k) in present:
        out.append(k)
        k += 1
    return out


def estimates_assignment(est_dir: str) -> Optional[str]:
    """``fixed`` or ``pit`` from ``<est_dir>/sources.json``; ``None`` without the file."""
    path = os.path.join(est_dir, ESTIMATES_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f).get("assignment")
    except (json.JSONDecodeError, AttributeError) as e:
        raise InputError(f"{path}: not a JSON object with an 'assignment' ({e})") from e
    if value not in ASSIGNMENTS:
        raise InputError(f"{path}: assignment must be one of {ASSIGNMENTS}, got {value!r}")
    return value
