import numpy as np
import pytest

from avse.corpus.types import PhonemeEvent
from avse.corpus.synthetic.visemes import (N_PARAMS, NEUTRAL, P_INDEX, PARAMS, REST, VISEMES, articulation_at,
                                 phoneme_parts, viseme_of, viseme_trajectory)

JAW, CLOSE, LD, TONGUE, ROUND, SPREAD = (P_INDEX[n] for n in (
    "jaw_open", "lip_closure", "lower_lip_to_teeth", "tongue_visible", "lip_round", "lip_spread"))


def seq(spec, t0=0.3):
    """[(phoneme, duration)] -> contiguous PhonemeEvents from t0; returns (events, end)."""
    ev, t = [], t0
    for p, d in spec:
        ev.append(PhonemeEvent(t, t + d, p))
        t += d
    return ev, t


def test_table_values_in_range_and_documented_params():
    assert PARAMS == ("jaw_open", "lip_spread", "lip_round", "lip_closure", "lower_lip_to_teeth",
                      "teeth_visible", "tongue_visible")
    for name, v in VISEMES.items():
        vec = v.vector()
        assert vec.shape == (N_PARAMS,) and np.all((vec >= 0) & (vec <= 1)), name


@pytest.mark.parametrize("ph,base", [("'a", "a"), (",i:", "i:"), ("@2", "@"), ("l/", "l"),
                                     ("r-", "r"), ("%b", "b"), ("I#", "I")])
def test_stress_marks_and_variants_map_to_base(ph, base):
    assert viseme_of(ph) == VISEMES[base]


def test_unknown_symbols_are_neutral_and_diphthongs_split():
    for ph in ("Qx", "zz9", "!!", "\u0283", "aI@@@"):
        assert phoneme_parts(ph) == (NEUTRAL,)
    assert phoneme_parts("aI") == (VISEMES["a"], VISEMES["I"])
    assert phoneme_parts("oU")[0].lip_round > 0.5
    assert phoneme_parts("") == (VISEMES["_"],)
    assert viseme_of("b").lip_closure == 1 and viseme_of("m").lip_closure == 1
    assert viseme_of("f").lower_lip_to_teeth == 1 and viseme_of("T").tongue_visible == 1


def test_shape_dtype_and_rest_outside_speech():
    ev, end = seq([("h", 0.08), ("a", 0.2), ("b", 0.08), ("u:", 0.2)], t0=0.5)
    n = int(np.ceil((end + 0.5) * 25))
    tr = viseme_trajectory(ev, n)
    assert tr.shape == (n, N_PARAMS) and tr.dtype == np.float32
    assert np.all((tr >= 0) & (tr <= 1))
    rest = REST.vector()
    np.testing.assert_allclose(tr[:8], np.tile(rest, (8, 1)), atol=1e-3)     # < 0.32 s
    np.testing.assert_allclose(tr[-8:], np.tile(rest, (8, 1)), atol=1e-3)
    assert tr[:, JAW].max() > 0.5
    assert viseme_trajectory(ev, 0).shape == (0, N_PARAMS)


def test_no_events_is_all_rest():
    tr = viseme_trajectory([], 10)
    np.testing.assert_allclose(tr, np.tile(REST.vector(), (10, 1)), atol=1e-6)


def test_targets_held_inside_long_phonemes():
    ev, end = seq([("a", 0.4), ("u:", 0.4)], t0=0.2)
    tr = viseme_trajectory(ev, int(end * 25) + 10)
    k_a = int(0.4 * 25)      # middle of "a"
    k_u = int(0.8 * 25)      # middle of "u:"
    np.testing.assert_allclose(tr[k_a], VISEMES["a"].vector(), atol=0.03)
    np.testing.assert_allclose(tr[k_u], VISEMES["u:"].vector(), atol=0.03)


@pytest.mark.parametrize("dur", [0.02, 0.03, 0.05])
@pytest.mark.parametrize("phase", np.linspace(0.0, 0.04, 9))
def test_short_bilabial_closes_the_lips_in_some_frame(dur, phase):
    ev, end = seq([("a", 0.2), ("b", dur), ("a", 0.2)], t0=0.2 + phase)
    tr = viseme_trajectory(ev, int(end * 25) + 5)
    assert tr[:, CLOSE].max() >= 0.75
    # ...and only around the b: a frame in the middle of a vowel stays open
    assert tr[int((0.3 + phase) * 25), CLOSE] < 0.05


def test_contacts_of_f_and_th():
    ev, end = seq([("a", 0.2), ("f", 0.06), ("a", 0.2), ("T", 0.06), ("a", 0.2)])
    tr = viseme_trajectory(ev, int(end * 25) + 5)
    kf = int((0.5 + 0.03) * 25)
    kt = int((0.76 + 0.03) * 25)
    assert tr[kf - 1:kf + 2, LD].max() > 0.75 and tr[:, CLOSE].max() < 0.05
    assert tr[kt - 1:kt + 2, TONGUE].max() > 0.75


def test_transitions_are_smooth_and_anticipate():
    ev, _ = seq([("m", 0.1), ("a", 0.25), ("u:", 0.25), ("i:", 0.25)], t0=0.4)
    t = np.arange(0.0, 1.6, 0.001)
    a = articulation_at(ev, t)
    smooth = [JAW, ROUND, SPREAD]
    assert np.abs(np.diff(a[:, smooth], axis=0)).max() < 0.03   # per ms: no jumps
    # the mouth starts to move before the acoustic onset, but not long before
    jaw = a[:, JAW]
    onset = t[np.argmax(jaw > 0.02)]
    assert 0.25 < onset < 0.4
    # rounding for u: starts during a
    k = np.searchsorted(t, 0.74)
    assert a[k, ROUND] > 0.1


def test_unsorted_events_and_gaps():
    ev, end = seq([("a", 0.2), ("i:", 0.2)])
    late = PhonemeEvent(end + 1.0, end + 1.2, "a")
    tr1 = viseme_trajectory(ev + [late], 80)
    tr2 = viseme_trajectory([late] + ev[::-1], 80)
    np.testing.assert_array_equal(tr1, tr2)
    k_gap = int((end + 0.5) * 25)   # 0.5 s into a 1 s gap between events: at rest
    np.testing.assert_allclose(tr1[k_gap], REST.vector(), atol=1e-3)


def test_unknown_and_odd_events_do_not_crash():
    ev = [PhonemeEvent(0.1, 0.2, "Qx"), PhonemeEvent(0.2, 0.2, "a"), PhonemeEvent(0.2, 0.3, "''"),
          PhonemeEvent(0.3, 0.25, "b"), PhonemeEvent(0.35, 0.5, "_:")]
    tr = viseme_trajectory(ev, 20)
    assert np.isfinite(tr).all() and tr.shape == (20, N_PARAMS)
