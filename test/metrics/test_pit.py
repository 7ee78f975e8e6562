import itertools

import numpy as np
import pytest

from avse.errors import InputError
from avse.metrics.pit import (best_permutation, pit_si_sdr, pit_si_sdri, si_sdr_improvement,
                              si_sdr_matrix)
from avse.metrics.sisdr import si_sdr
from testutils import speechlike


def sources(k, seconds=1.0):
    return np.stack([speechlike(seconds, seed=10 + i, f0=100.0 + 37 * i) for i in range(k)]).astype(np.float64)


def test_swapped_references():
    rng = np.random.default_rng(0)
    refs = sources(2)
    ests = refs[::-1] + 0.05 * rng.standard_normal(refs.shape)
    mean, perm = pit_si_sdr(refs, ests)
    assert perm == (1, 0)
    expect = np.mean([si_sdr(refs[0], ests[1]), si_sdr(refs[1], ests[0])])
    assert mean == pytest.approx(expect)
    mean_id, perm_id = pit_si_sdr(refs, ests[::-1])
    assert perm_id == (0, 1) and mean_id == pytest.approx(mean)


@pytest.mark.parametrize("k", [1, 3, 4])
def test_every_permutation_recovered(k):
    rng = np.random.default_rng(k)
    refs = sources(k, 0.5)
    for true in list(itertools.permutations(range(k)))[::5] or [(0,)]:
        ests = np.empty_like(refs)
        for i, p in enumerate(true):
            ests[p] = refs[i] + 0.1 * rng.standard_normal(refs.shape[1])
        _, perm = pit_si_sdr(refs, ests)
        assert perm == tuple(true)


def test_matrix_and_best_permutation():
    m = np.array([[1.0, 9.0], [8.0, 2.0]])
    assert best_permutation(m) == ((1, 0), 8.5)
    m = np.array([[np.nan, 1.0], [0.0, np.nan]])  # nan never preferred
    assert best_permutation(m)[0] == (1, 0)
    refs = sources(2, 0.5)
    mat = si_sdr_matrix(refs, refs)
    assert mat[0, 0] == mat[1, 1] == 100.0
    assert mat[0, 1] < 0 and mat[1, 0] < 0


def test_too_many_sources_and_bad_shapes():
    with pytest.raises(InputError, match="at most 4"):
        pit_si_sdr(np.zeros((5, 100)), np.zeros((5, 100)))
    with pytest.raises(InputError, match="2 references but 3 estimates"):
        pit_si_sdr(np.ones((2, 100)), np.ones((3, 100)))


def test_improvement_over_mixture():
    rng = np.random.default_rng(1)
    refs = sources(2)
    mix = refs.sum(0)
    ests = refs[::-1] + 0.01 * rng.standard_normal(refs.shape)
    imp, perm = pit_si_sdri(refs, ests, mix)
    assert perm == (1, 0)
    expect = np.mean([si_sdr(refs[0], ests[1]) - si_sdr(refs[0], mix),
                      si_sdr(refs[1], ests[0]) - si_sdr(refs[1], mix)])
    assert imp == pytest.approx(expect)
    assert imp > 20
    assert si_sdr_improvement(refs, np.stack([mix, mix]), mix) == pytest.approx(0.0, abs=1e-9)
