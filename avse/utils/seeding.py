"""Deterministic random streams keyed by names, independent of job splitting."""
import hashlib

import numpy as np


def stable_hash(*parts: object) -> int:
    """A 63-bit integer from the parts' text (unlike ``hash``, the same in every process)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "little") >> 1


def utt_rng(seed: int, *names: object) -> np.random.Generator:
    """A generator for one item (e.g. an utterance id): the same whatever ``--nj`` is."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stable_hash(*names)])
