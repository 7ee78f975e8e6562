"""Which utterances of a test set the listening page plays.

The choice is deterministic (no random numbers: the same keys and SNR table give the
same utterances on every machine) and spread over the input SNRs when the data dir has
an ``utt2snr``:

1. the keys are grouped by SNR (:func:`avse.scoring.conditions.group_keys`: groups in
   numeric order, keys without an SNR last as ``n/a``); without ``utt2snr`` they form
   one group;
2. with fewer picks than groups, evenly spaced groups are kept (the lowest and the
   highest SNR, then evenly between; one pick: the middle group);
3. the picks are dealt to the groups in turn (a group gives at most all its keys);
4. inside a group the picks are evenly spaced over its keys in byte order (so they are
   not all from the first speaker).

The result is in group order (ascending SNR), then byte order inside a group.
"""
import os
from typing import List, Optional, Sequence, Tuple

from avse.errors import InputError
from avse.io.scp import c_sorted
from avse.scoring.conditions import group_keys

SNR_TABLE = "utt2snr"


def spread(items: Sequence, n: int, ends: bool = False) -> list:
    """``n`` items evenly spaced over ``items``: the centres of ``n`` equal parts, or with
    ``ends`` the first, the last and evenly spaced ones between; all of them when
    ``n >= len(items)``."""
    if n >= len(items):
        return list(items)
    if n <= 0:
        return []
    last = len(items) - 1
    if ends and n > 1:  # round(i * last / (n - 1)), halves up
        return [items[(2 * i * last + n - 1) // (2 * (n - 1))] for i in range(n)]
    return [items[(2 * i + 1) * len(items) // (2 * n)] for i in range(n)]


def deal(sizes: Sequence[int], n: int) -> List[int]:
    """Deal ``n`` picks to groups of ``sizes`` one at a time in turn, skipping full groups."""
    alloc = [0] * len(sizes)
    left = min(n, sum(sizes))
    while left:
        for i, size in enumerate(sizes):
            if left and alloc[i] < size:
                alloc[i] += 1
                left -= 1
    return alloc


def snr_groups(data_dir: Optional[str], keys: Sequence[str]) -> List[Tuple[str, List[str]]]:
    """``[(SNR label, [keys])]`` from ``data_dir/utt2snr``; one group ``("", keys)`` without it."""
    keys = c_sorted(set(keys))
    if data_dir and os.path.isfile(os.path.join(data_dir, SNR_TABLE)):
        return group_keys(data_dir, keys).get("snr", [("", keys)])
    return [("", keys)]


def select_utts(keys: Sequence[str], n: int, data_dir: Optional[str] = None) -> List[str]:
    """Up to ``n`` of ``keys`` spread over the SNRs of ``data_dir`` (module doc); every
    key when ``n`` is 0.

    Raises:
        InputError: ``n`` is negative, or ``utt2snr`` holds a value that is not a number.
    """
    if n < 0:
        raise InputError(f"the number of utterances must be >= 0, got {n}")
    groups = [(lab, ks) for lab, ks in snr_groups(data_dir, keys) if ks]
    if n == 0:
        return [k for _, ks in groups for k in ks]
    if n < len(groups):
        groups = spread(groups, n, ends=True)
    alloc = deal([len(ks) for _, ks in groups], n)
    return [k for (_, ks), a in zip(groups, alloc) for k in spread(ks, a)]
