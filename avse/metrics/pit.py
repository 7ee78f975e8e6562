"""Permutation-invariant scoring of K estimated sources against K references.

The permutation is chosen by mean SI-SDR, by brute force over all K! orders
(K <= :data:`MAX_SOURCES`). A permutation ``perm`` pairs reference ``k`` with estimate
``perm[k]`` (0-based), the convention of BSS-eval's "source permutation".
"""
import itertools
from typing import Tuple

import numpy as np

from avse.errors import InputError
from avse.metrics.sisdr import si_sdr

#: largest number of sources scored by brute force (4! = 24 permutations)
MAX_SOURCES = 4


def _as_sources(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"{what}: expected shape (K, N), got {x.shape}")
    return x


def _check(refs: np.ndarray, ests: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    refs = _as_sources(refs, "references")
    ests = _as_sources(ests, "estimates")
    if refs.shape[0] != ests.shape[0]:
        raise InputError(f"{refs.shape[0]} references but {ests.shape[0]} estimates")
    k = refs.shape[0]
    if k > MAX_SOURCES:
        raise InputError(f"permutation search over {k} sources ({k}! orders) is not supported; "
                         f"at most {MAX_SOURCES} sources")
    n = min(refs.shape[1], ests.shape[1])
    return refs[:, :n], ests[:, :n]


def si_sdr_matrix(refs: np.ndarray, ests: np.ndarray) -> np.ndarray:
    """``M[i, j]`` = SI-SDR (dB) of estimate ``j`` against reference ``i``."""
    refs, ests = _check(refs, ests)
    k = refs.shape[0]
    return np.array([[si_sdr(refs[i], ests[j]) for j in range(k)] for i in range(k)])


def best_permutation(score: np.ndarray) -> Tuple[Tuple[int, ...], float]:
    """Permutation maximising the mean of ``score[k, perm[k]]`` (``nan`` counts as -inf).

    Ties are broken by the first permutation in lexicographic order (the identity first).
    """
    score = np.asarray(score, dtype=np.float64)
    k = score.shape[0]
    if score.shape != (k, k):
        raise InputError(f"score matrix must be square, got {score.shape}")
    if k > MAX_SOURCES:
        raise InputError(f"permutation search over {k} sources is not supported; at most {MAX_SOURCES}")
    s = np.where(np.isfinite(score), score, -np.inf)
    best, best_val = None, -np.inf
    for perm in itertools.permutations(range(k)):
        v = float(np.mean(s[np.arange(k), perm]))
        if best is None or v > best_val:
            best, best_val = perm, v
    mean = float(np.mean(score[np.arange(k), best]))
    return tuple(int(p) for p in best), mean


def pit_si_sdr(refs: np.ndarray, ests: np.ndarray) -> Tuple[float, Tuple[int, ...]]:
    """Permutation-invariant SI-SDR.

    Args:
        refs: ``(K, N)`` reference sources.
        ests: ``(K, N)`` estimated sources, in any order (lengths are cut to the shorter).
    Returns:
        ``(mean SI-SDR in dB over the sources, perm)`` with estimate ``perm[k]``
        paired with reference ``k``.
    Raises:
        InputError: shapes disagree, or K > :data:`MAX_SOURCES`.
    """
    m = si_sdr_matrix(refs, ests)
    perm, mean = best_permutation(m)
    return mean, perm


def si_sdr_improvement(refs: np.ndarray, ests: np.ndarray, mix: np.ndarray,
                       perm: Tuple[int, ...] | None = None) -> float:
    """Mean SI-SDR improvement (dB) of ``ests`` over the mixture ``mix`` (``(N,)``).

    With ``perm`` None the permutation is chosen by :func:`pit_si_sdr`. Each source
    contributes ``SI-SDR(ref_k, est_perm[k]) - SI-SDR(ref_k, mix)``.
    """
    refs, ests = _check(refs, ests)
    mix = np.asarray(mix, dtype=np.float64).reshape(-1)
    if perm is None:
        _, perm = pit_si_sdr(refs, ests)
    vals = [si_sdr(refs[k], ests[perm[k]]) - si_sdr(refs[k], mix) for k in range(refs.shape[0])]
    return float(np.mean(vals))


def pit_si_sdri(refs: np.ndarray, ests: np.ndarray, mix: np.ndarray) -> Tuple[float, Tuple[int, ...]]:
    """``(mean SI-SDR improvement, perm)`` with the permutation chosen by SI-SDR."""
    _, perm = pit_si_sdr(refs, ests)
    return si_sdr_improvement(refs, ests, mix, perm), perm
