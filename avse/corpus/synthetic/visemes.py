"""Phoneme -> viseme articulation targets and a coarticulated per-frame trajectory.

Each espeak-ng phoneme maps to a target vector of seven articulation parameters, all
in [0, 1] (see :data:`PARAMS`):

=====================  =============================================================
``jaw_open``           vertical opening of the mouth (0 closed, 1 widest ``A:``)
``lip_spread``         lips pulled sideways (``i:``, ``s``) - wider, thinner mouth
``lip_round``          lips pushed forward and rounded (``u:``, ``w``, ``S``)
``lip_closure``        bilabial contact (``b p m``): lips pressed together
``lower_lip_to_teeth`` labiodental contact (``f v``): lower lip under upper teeth
``teeth_visible``      how much of the teeth rows shows when the mouth is open
``tongue_visible``     tongue tip between or behind the teeth (``T D l``)
=====================  =============================================================

Target table (jaw, spread, round, closure, lower_lip_to_teeth, teeth, tongue):

==========================  ===================================  ================
phonemes                    targets                              class
==========================  ===================================  ================
rest / ``_`` ``_:``         0.00 0.10 0.05 0    0    0    0      pause
``b p m``                   0.08 0.20 0.10 1    0    0    0      bilabial
``f v``                     0.12 0.30 0.00 0    1    0.9  0      labiodental
``T D``                     0.22 0.30 0.00 0    0    0.6  1      dental
``s z``                     0.12 0.50 0.00 0    0    0.9  0      alveolar
``t d n``                   0.20 0.35 0.00 0    0    0.6  0.15   alveolar
``l``                       0.30 0.30 0.00 0    0    0.4  0.6    alveolar
``S Z tS dZ``               0.16 0.00 0.65 0    0    0.6  0      postalveolar
``r``                       0.20 0.00 0.50 0    0    0.2  0      approximant
``w``                       0.12 0.00 0.90 0    0    0    0      approximant
``j``                       0.16 0.60 0.00 0    0    0.5  0      approximant
``k g N``                   0.28 0.20 0.00 0    0    0.3  0      velar
``h``                       0.35 0.20 0.00 0    0    0.3  0      glottal
``a`` / ``aa``              0.80 0.40 0.00 0    0    0.4  0      vowel
``A:``                      0.90 0.20 0.10 0    0    0.3  0      vowel
``E`` / ``e``               0.50/0.45 0.50/0.55 0 0 0 0.5 0      vowel
``I`` / ``i``               0.32/0.25 0.65/0.85 0 0 0 0.6/0.7 0  vowel
``i:``                      0.22 0.95 0.00 0    0    0.8  0      vowel
``V``                       0.60 0.30 0.00 0    0    0.4  0      vowel
``0``                       0.70 0.00 0.45 0    0    0.2  0      vowel
``O:``                      0.55 0.00 0.70 0    0    0.15 0      vowel
``U``                       0.30 0.00 0.60 0    0    0.1  0      vowel
``u:``                      0.22 0.00 1.00 0    0    0.05 0      vowel
``@`` / ``3:``              0.35 0.30/0.10 0/0.35 0 0 0.3 0      vowel (weak)
==========================  ===================================  ================

Diphthongs and triphthongs are split into their parts (``aI`` = ``a`` then ``I``,
``oU`` = ``O:`` then ``U``, ``A@`` = ``A:`` then ``@``, ``aI@`` = ``a I @`` ...),
the first part taking 55 % of the event. Stress and length marks (``'`` ``,`` ``%``
``=``) are ignored; variant suffixes (``@2``, ``I#``, ``l/``, ``r-``) fall back to
the base phoneme; anything else unknown maps to the neutral viseme :data:`NEUTRAL`.

Coarticulation follows the dominance model of Cohen & Massaro: every segment has a
per-parameter dominance that is constant inside the segment and decays as
``exp(-(d / tau) ** 2)`` with the distance ``d`` outside it (``tau`` longer before the
segment, i.e. anticipation, than after it); the parameter value at time ``t`` is the
dominance-weighted mean of the targets. Targets are therefore held in phoneme
interiors, neighbours blend smoothly, and weakly specified segments (``h``, velars,
schwa, the lip shape of non-labial consonants) take the shape of their neighbours.
Contact parameters (closure, labiodental, tongue) are local gestures: they decay
faster, have a higher dominance where they are required, and a frame shows the
maximum contact over its 40 ms window, so that a 30 ms ``b`` still closes the lips in
at least one frame.
"""
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from avse.corpus.types import VIDEO_FPS, PhonemeEvent

PARAMS: Tuple[str, ...] = ("jaw_open", "lip_spread", "lip_round", "lip_closure",
                           "lower_lip_to_teeth", "teeth_visible", "tongue_visible")
N_PARAMS = len(PARAMS)
P_INDEX: Dict[str, int] = {n: i for i, n in enumerate(PARAMS)}
# parameters that show a contact: a frame takes their maximum over the frame window
CONTACT_PARAMS: Tuple[str, ...] = ("lip_closure", "lower_lip_to_teeth", "tongue_visible")


@dataclass(frozen=True)
class Viseme:
    """Articulation targets of one phoneme (all in [0, 1]) and its coarticulation class."""

    jaw_open: float = 0.0
    lip_spread: float = 0.0
    lip_round: float = 0.0
    lip_closure: float = 0.0
    lower_lip_to_teeth: float = 0.0
    teeth_visible: float = 0.0
    tongue_visible: float = 0.0
    kind: str = "vowel"

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, n) for n in PARAMS], dtype=np.float64)


# per-class dominance of each parameter (order of PARAMS); contact parameters get an
# extra boost where their target is high (see _dominance)
DOMINANCE: Dict[str, Tuple[float, ...]] = {
    #               jaw  spread round close  ld  teeth tongue
    "vowel":        (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    "weak_vowel":   (0.5, 0.4, 0.4, 1.0, 1.0, 0.5, 1.0),
    "bilabial":     (1.5, 0.4, 0.4, 1.0, 1.0, 1.0, 1.0),
    "labiodental":  (1.0, 0.4, 0.4, 1.0, 1.0, 1.5, 1.0),
    "dental":       (0.8, 0.5, 0.5, 1.0, 1.0, 1.5, 1.0),
    "alveolar":     (0.8, 0.4, 0.3, 1.0, 1.0, 1.0, 1.0),
    "postalveolar": (0.8, 0.8, 1.5, 1.0, 1.0, 1.0, 1.0),
    "approximant":  (0.7, 0.8, 1.5, 1.0, 1.0, 0.8, 1.0),
    "velar":        (0.5, 0.3, 0.3, 1.0, 1.0, 0.5, 1.0),
    "glottal":      (0.2, 0.2, 0.2, 0.5, 0.5, 0.2, 0.5),
    "pause":        (0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6),
    "rest":         (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
}
CONTACT_BOOST = 4.0  # dominance multiplier of a contact parameter at target 1


def _v(jaw, spread, rnd, close=0.0, ld=0.0, teeth=0.0, tongue=0.0, kind="vowel") -> Viseme:
    return Viseme(jaw, spread, rnd, close, ld, teeth, tongue, kind)


REST = _v(0.0, 0.10, 0.05, kind="rest")
NEUTRAL = _v(0.30, 0.25, 0.10, teeth=0.3, kind="weak_vowel")  # unknown symbols

VISEMES: Dict[str, Viseme] = {
    "_": _v(0.0, 0.10, 0.05, kind="pause"),
    "_:": _v(0.0, 0.10, 0.05, kind="pause"),
    # consonants
    "b": _v(0.08, 0.20, 0.10, close=1.0, kind="bilabial"),
    "p": _v(0.08, 0.20, 0.10, close=1.0, kind="bilabial"),
    "m": _v(0.08, 0.20, 0.10, close=1.0, kind="bilabial"),
    "f": _v(0.12, 0.30, 0.0, ld=1.0, teeth=0.9, kind="labiodental"),
    "v": _v(0.12, 0.30, 0.0, ld=1.0, teeth=0.9, kind="labiodental"),
    "T": _v(0.22, 0.30, 0.0, teeth=0.6, tongue=1.0, kind="dental"),
    "D": _v(0.22, 0.30, 0.0, teeth=0.6, tongue=1.0, kind="dental"),
    "s": _v(0.12, 0.50, 0.0, teeth=0.9, kind="alveolar"),
    "z": _v(0.12, 0.50, 0.0, teeth=0.9, kind="alveolar"),
    "t": _v(0.20, 0.35, 0.0, teeth=0.6, tongue=0.15, kind="alveolar"),
    "d": _v(0.20, 0.35, 0.0, teeth=0.6, tongue=0.15, kind="alveolar"),
    "n": _v(0.20, 0.35, 0.0, teeth=0.6, tongue=0.15, kind="alveolar"),
    "l": _v(0.30, 0.30, 0.0, teeth=0.4, tongue=0.6, kind="alveolar"),
    "S": _v(0.16, 0.0, 0.65, teeth=0.6, kind="postalveolar"),
    "Z": _v(0.16, 0.0, 0.65, teeth=0.6, kind="postalveolar"),
    "tS": _v(0.16, 0.0, 0.65, teeth=0.6, kind="postalveolar"),
    "dZ": _v(0.16, 0.0, 0.65, teeth=0.6, kind="postalveolar"),
    "r": _v(0.20, 0.0, 0.50, teeth=0.2, kind="approximant"),
    "w": _v(0.12, 0.0, 0.90, kind="approximant"),
    "j": _v(0.16, 0.60, 0.0, teeth=0.5, kind="approximant"),
    "k": _v(0.28, 0.20, 0.0, teeth=0.3, kind="velar"),
    "g": _v(0.28, 0.20, 0.0, teeth=0.3, kind="velar"),
    "N": _v(0.28, 0.20, 0.0, teeth=0.3, kind="velar"),
    "x": _v(0.28, 0.20, 0.0, teeth=0.3, kind="velar"),
    "h": _v(0.35, 0.20, 0.0, teeth=0.3, kind="glottal"),
    "?": _v(0.20, 0.20, 0.0, teeth=0.2, kind="glottal"),
    # vowels
    "a": _v(0.80, 0.40, 0.0, teeth=0.4),
    "aa": _v(0.80, 0.35, 0.0, teeth=0.4),
    "A:": _v(0.90, 0.20, 0.10, teeth=0.3),
    "A": _v(0.85, 0.20, 0.10, teeth=0.3),
    "E": _v(0.50, 0.50, 0.0, teeth=0.5),
    "e": _v(0.45, 0.55, 0.0, teeth=0.5),
    "I": _v(0.32, 0.65, 0.0, teeth=0.6),
    "i": _v(0.25, 0.85, 0.0, teeth=0.7),
    "i:": _v(0.22, 0.95, 0.0, teeth=0.8),
    "V": _v(0.60, 0.30, 0.0, teeth=0.4),
    "0": _v(0.70, 0.0, 0.45, teeth=0.2),
    "O": _v(0.60, 0.0, 0.60, teeth=0.15),
    "O:": _v(0.55, 0.0, 0.70, teeth=0.15),
    "o": _v(0.45, 0.0, 0.75, teeth=0.1),
    "U": _v(0.30, 0.0, 0.60, teeth=0.1),
    "u": _v(0.25, 0.0, 0.85, teeth=0.05),
    "u:": _v(0.22, 0.0, 1.00, teeth=0.05),
    "@": _v(0.35, 0.30, 0.0, teeth=0.3, kind="weak_vowel"),
    "3": _v(0.35, 0.10, 0.35, teeth=0.3, kind="weak_vowel"),
    "3:": _v(0.35, 0.10, 0.35, teeth=0.3, kind="weak_vowel"),
}

# multi-part vowels: split the event into these parts (first part 55 %)
SEQUENCES: Dict[str, Tuple[str, ...]] = {
    "aI": ("a", "I"), "aU": ("a", "U"), "eI": ("e", "I"), "oU": ("O:", "U"),
    "OI": ("O:", "I"), "@U": ("@", "U"), "@L": ("@", "l"), "A@": ("A:", "@"),
    "e@": ("E", "@"), "i@": ("I", "@"), "U@": ("U", "@"), "o@": ("O:", "@"),
    "O@": ("O:", "@"), "aI@": ("a", "I", "@"), "aU@": ("a", "U", "@"),
    "aI3": ("a", "I", "@"), "i@3": ("I", "@"), "eI@": ("e", "I", "@"),
}
_PART_SHARES = {1: (1.0,), 2: (0.55, 0.45), 3: (0.4, 0.3, 0.3)}
_STRESS = re.compile(r"[',%=]")
_SUFFIX = re.compile(r"[0-9#/\-;!]+$")


def phoneme_parts(phoneme: str) -> Tuple[Viseme, ...]:
    """The viseme(s) of an espeak-ng phoneme mnemonic; unknown symbols give (NEUTRAL,)."""
    p = _STRESS.sub("", str(phoneme)).strip()
    for cand in (p, _SUFFIX.sub("", p)):
        if not cand:
            continue
        if cand in VISEMES:
            return (VISEMES[cand],)
        if cand in SEQUENCES:
            return tuple(VISEMES[c] for c in SEQUENCES[cand])
    if p == "":
        return (VISEMES["_"],)  # a bare stress or length mark: treat as a short pause
    return (NEUTRAL,)


def viseme_of(phoneme: str) -> Viseme:
    """The (first-part) viseme of a phoneme; see :func:`phoneme_parts`."""
    return phoneme_parts(phoneme)[0]


@dataclass(frozen=True)
class Coarticulation:
    """Timing of the dominance model (seconds).

    Attributes:
        tau_anticipation: decay time of a segment's dominance before its onset.
        tau_carryover: decay time after its offset.
        contact_tau_anticipation, contact_tau_carryover: the same for the contact
            parameters (closure, labiodental, tongue), which are local gestures.
        lead: the mouth leads the audio by this much (visual articulation starts
            slightly before the acoustic onset).
        contact_window: fraction of the frame period, centred on the frame centre,
            over which a frame takes the maximum of the contact parameters (any
            contact longer than ``(1 - contact_window) / fps`` shows in some frame).
        subsamples: time samples per window used for that maximum.
    """

    tau_anticipation: float = 0.055
    tau_carryover: float = 0.04
    contact_tau_anticipation: float = 0.015
    contact_tau_carryover: float = 0.012
    lead: float = 0.015
    contact_window: float = 0.6
    subsamples: int = 9


def _segments(events: Iterable[PhonemeEvent]) -> List[Tuple[float, float, Viseme]]:
    """Sorted (start, end, viseme) segments with explicit rest before, between (gaps)
    and after the events."""
    evs = sorted((float(e.start), float(e.end), str(e.phoneme)) for e in events)
    evs = [(s, max(e, s), p) for s, e, p in evs if np.isfinite(s) and np.isfinite(e)]
    if not evs:
        return [(-np.inf, np.inf, REST)]
    segs: List[Tuple[float, float, Viseme]] = [(-np.inf, evs[0][0], REST)]
    t_prev = evs[0][0]
    for s, e, p in evs:
        if s > t_prev + 1e-4:  # a gap between events: the mouth rests
            segs.append((t_prev, s, REST))
        s = max(s, t_prev)
        e = max(e, s)
        parts = phoneme_parts(p)
        shares = _PART_SHARES[len(parts)]
        t = s
        for v, sh in zip(parts, shares):
            segs.append((t, t + sh * (e - s), v))
            t += sh * (e - s)
        t_prev = max(t_prev, e)
    segs.append((t_prev, np.inf, REST))
    return segs


def _dominance(v: Viseme) -> Tuple[np.ndarray, np.ndarray]:
    target = v.vector()
    dom = np.array(DOMINANCE.get(v.kind, DOMINANCE["vowel"]), dtype=np.float64)
    for name in CONTACT_PARAMS:
        i = P_INDEX[name]
        dom[i] *= 1.0 + (CONTACT_BOOST - 1.0) * target[i]
    return target, dom


def articulation_at(events: Sequence[PhonemeEvent], times: np.ndarray,
                    coarticulation: Coarticulation | None = None) -> np.ndarray:
    """Coarticulated parameters ``(len(times), P)`` at arbitrary times (seconds)."""
    co = coarticulation or Coarticulation()
    t = np.asarray(times, dtype=np.float64) + co.lead  # the mouth shows the future
    segs = _segments(events)
    num = np.zeros((t.size, N_PARAMS))
    den = np.full((t.size, N_PARAMS), 1e-6)  # a whisper of rest where nothing reaches
    num += 1e-6 * REST.vector()
    order = np.argsort(t)
    ts = t[order]
    contact = np.zeros(N_PARAMS, bool)
    contact[[P_INDEX[n] for n in CONTACT_PARAMS]] = True
    tau_a = np.where(contact, co.contact_tau_anticipation, co.tau_anticipation)
    tau_c = np.where(contact, co.contact_tau_carryover, co.tau_carryover)
    reach_a, reach_c = 3.5 * float(tau_a.max()), 3.5 * float(tau_c.max())
    for s, e, v in segs:
        i0 = np.searchsorted(ts, s - reach_a, side="left")
        i1 = np.searchsorted(ts, e + reach_c, side="right")
        if i1 <= i0:
            continue
        tt = ts[i0:i1, None]
        before = np.clip(s - tt, 0.0, None) / tau_a[None, :]
        after = np.clip(tt - e, 0.0, None) / tau_c[None, :]
        target, dom = _dominance(v)
        wd = np.exp(-(before ** 2 + after ** 2)) * dom[None, :]
        idx = order[i0:i1]
        num[idx] += wd * target[None, :]
        den[idx] += wd
    return np.clip(num / den, 0.0, 1.0)


def viseme_trajectory(events: Sequence[PhonemeEvent], n_frames: int, fps: float = VIDEO_FPS,
                      coarticulation: Coarticulation | None = None) -> np.ndarray:
    """Per-frame articulation ``(n_frames, P)`` float32 for timed phonemes.

    Frame ``k`` shows the mouth at its centre ``(k + 0.5) / fps``; contact parameters
    (:data:`CONTACT_PARAMS`) take their maximum over the central ``contact_window``
    part of the frame period so short closures stay visible in at least one frame.
    Before the first and after the last event the mouth is at rest (closed, neutral).
    """
    n_frames = int(n_frames)
    if n_frames <= 0:
        return np.zeros((0, N_PARAMS), np.float32)
    co = coarticulation or Coarticulation()
    m = max(1, int(co.subsamples)) | 1  # odd: the middle subsample is the frame centre
    k = np.arange(n_frames)[:, None]
    j = np.arange(m)[None, :]
    w = float(np.clip(co.contact_window, 0.0, 1.0))
    times = ((k + 0.5 + w * ((j + 0.5) / m - 0.5)) / float(fps)).ravel()
    vals = articulation_at(events, times, co).reshape(n_frames, m, N_PARAMS)
    traj = vals[:, m // 2, :].copy()
    for name in CONTACT_PARAMS:
        i = P_INDEX[name]
        traj[:, i] = vals[:, :, i].max(axis=1)
    return traj.astype(np.float32)
