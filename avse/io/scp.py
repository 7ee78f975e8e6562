"""Kaldi-style text tables: ``<key> <value>`` per line (scp, utt2spk, utt2snr, ...).

Keys never contain white space; values run to the end of the line. Files are written
sorted by key in byte order, which is what ``LC_ALL=C sort`` gives.
"""
import os
from typing import Dict, Iterable, List, Mapping, Tuple

from avse.errors import InputError
from avse.utils.fileio import atomic_open


def c_sorted(keys: Iterable[str]) -> List[str]:
    """Sort strings in byte order (``LC_ALL=C``)."""
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def read_table(path: str, allow_empty_value: bool = False) -> Dict[str, str]:
    """Read a ``<key> <value>`` file into an insertion-ordered dict.

    Raises:
        InputError: file missing, a line without value, or a duplicate key; the
            message names ``path:line``.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    out: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            key = parts[0]
            if line[0].isspace():
                raise InputError(f"{path}:{n}: line starts with white space: {line!r}")
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise InputError(f"{path}:{n}: key {key!r} has no value")
            if key in out:
                raise InputError(f"{path}:{n}: duplicate key {key!r}")
            out[key] = value
    return out


def write_table(path: str, table: Mapping[str, object]) -> None:
    """Write ``table`` sorted in byte order, atomically.

    Raises:
        InputError: a key is empty or contains white space (it would not read back).
    """
    for key in table:
        check_key(key, where=path)
    with atomic_open(path) as f:
        for key in c_sorted(table):
            f.write(f"{key} {table[key]}\n")


def check_key(key: str, where: str = "") -> None:
    """Raise InputError unless ``key`` is a usable utterance/speaker id."""
    if not key or any(c.isspace() for c in key):
        raise InputError(f"{where + ': ' if where else ''}invalid id {key!r}: ids must be non-empty "
                         "and contain no white space")


def read_list(path: str) -> List[str]:
    """Read the first column of a table file (keys), in file order."""
    return list(read_table(path, allow_empty_value=True))


def split_keys(keys: List[str], n: int, groups: Mapping[str, str] | None = None) -> List[List[str]]:
    """Split ``keys`` into ``n`` contiguous, balanced parts.

    Args:
        keys: keys in the order to keep.
        n: number of parts (>= 1).
        groups: optional key -> group (e.g. utt2spk); a group is never split across
            parts, and parts are balanced by key count.
    Returns:
        ``n`` lists; some may be empty when there are fewer keys (or groups) than parts.
    """
    if n < 1:
        raise InputError(f"number of parts must be >= 1, got {n}")
    if groups is None:
        units: List[List[str]] = [[k] for k in keys]
    else:
        units = []
        index: Dict[str, int] = {}
        for k in keys:
            if k not in groups:
                raise InputError(f"key {k!r} has no group (speaker)")
            g = groups[k]
            if g not in index:
                index[g] = len(units)
                units.append([])
            units[index[g]].append(k)
    total = sum(len(u) for u in units)
    parts: List[List[str]] = [[] for _ in range(n)]
    done = 0
    for u in units:
        # a unit goes to the part its midpoint falls in: contiguous and balanced
        mid = done + len(u) / 2.0
        parts[min(n - 1, int(mid * n / total))].extend(u)
        done += len(u)
    return parts


def inverse_table(table: Mapping[str, str]) -> Dict[str, List[str]]:
    """utt2spk -> spk2utt: value -> sorted list of keys."""
    out: Dict[str, List[str]] = {}
    for k, v in table.items():
        out.setdefault(v, []).append(k)
    return {v: c_sorted(ks) for v, ks in out.items()}


def items(path: str) -> List[Tuple[str, str]]:
    return list(read_table(path).items())
