"""The in-repo sentence grammar: capacity, distinctness, determinism, variety."""
import re

import numpy as np
import pytest

from avse.corpus.synthetic.grammar import TEMPLATES, SentenceGrammar, _allocate, make_sentences
from avse.errors import InputError


def test_capacity():
    g = SentenceGrammar()
    assert SentenceGrammar.capacity() == g.capacity() == sum(g.template_sizes())
    assert g.capacity() >= 10000
    assert min(g.template_sizes()) >= 1000


def test_thousand_distinct_well_formed_sentences():
    s = make_sentences(1000, seed=0)
    assert len(s) == 1000 and len(set(s)) == 1000
    for x in s:
        n = len(x.split())
        assert 5 <= n <= 12, x
        assert x[0].isupper() and x[-1] in ".?", x
        assert re.fullmatch(r"[A-Za-z ]+[.?]", x), x


def test_deterministic_and_seed_dependent():
    a = make_sentences(300, seed=1)
    assert a == make_sentences(300, seed=1)
    b = make_sentences(300, seed=2)
    assert a != b and len(set(a) & set(b)) < 30
    # a bigger request is still distinct
    big = make_sentences(20000, seed=3)
    assert len(set(big)) == 20000


def test_spread_over_templates():
    s = make_sentences(1200, seed=0)
    firsts = {x.split()[0] for x in s}
    assert {"Please", "Why", "My", "The", "Would", "Remember"} <= firsts
    assert sum(x.startswith("Please ") for x in s) == 100  # 1200 / 12 templates


def test_template_indices_are_injective():
    g = SentenceGrammar()
    rng = np.random.default_rng(0)
    seen = {}
    for t, size in enumerate(g.template_sizes()):
        idx = np.unique(rng.integers(0, size, 3000))
        texts = {g.sentence(t, int(i)) for i in idx}
        assert len(texts) == len(idx), t
        for x in texts:  # no sentence is produced by two templates
            assert seen.setdefault(x, t) == t, x
    with pytest.raises(InputError):
        g.sentence(0, g.template_sizes()[0])


def test_phonetic_variety():
    s = make_sentences(1000, seed=4)
    low = [x.lower() for x in s]
    assert np.mean([bool(re.search(r"[bpm]", x)) for x in low]) > 0.9
    assert np.mean([bool(re.search(r"[fv]|ph", x)) for x in low]) > 0.4
    assert np.mean([bool(re.search(r"oo|o|u|w", x)) for x in low]) > 0.9
    words = {w.strip(".?").lower() for x in s for w in x.split()}
    assert len(words) > 300


def test_sample_uses_the_rng():
    g = SentenceGrammar()
    a = [g.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = np.random.default_rng(8)
    many = {g.sample(rng) for _ in range(200)}
    assert len(many) > 190
    patterns = [re.escape(p).replace(r"\{\}", ".+") for p, _ in TEMPLATES]
    for x in many:
        assert any(re.fullmatch(p, x[0].lower() + x[1:]) or re.fullmatch(p, x) for p in patterns), x


def test_allocation_caps_small_templates():
    assert _allocate(50, [2, 100, 5], [0, 1, 2]) == [2, 43, 5]
    assert _allocate(7, [2, 100, 5], [2, 1, 0]) == [2, 2, 3]
    assert _allocate(0, [3, 3], [0, 1]) == [0, 0]


def test_too_many_or_bad_n_raise():
    assert make_sentences(0, seed=0) == []
    with pytest.raises(InputError, match="only"):
        make_sentences(SentenceGrammar.capacity() + 1, seed=0)
    with pytest.raises(InputError):
        make_sentences(-1, seed=0)
