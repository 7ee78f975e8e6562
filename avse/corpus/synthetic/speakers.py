"""Synthetic speakers: espeak-ng voice variants with their own pitch, range and rate.

A speaker is an accent (``en-us`` American or ``en`` British) plus a voice variant of
the bundled data (``voices/!v``: ``m1``-``m8``, ``f1``-``f5``, ``Andrea``, ``belinda``,
``steph``), a pitch band, a pitch range and a speaking rate. Speakers are drawn in
rounds: round 0 uses each of the 16 variants once (alternately male and female), later
rounds reuse every variant with the other accent and another pitch band, so that no
two speakers share voice and pitch band. ``make_speakers`` can thus make up to
``16 * 6 = 96`` distinct speakers (:func:`max_speakers`).
"""
from dataclasses import asdict, dataclass
from typing import Dict, List, Tuple

import numpy as np

from avse.errors import InputError

# (variant, gender); all exist in espeakng-loader's data/voices/!v
MALE_VARIANTS: Tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
FEMALE_VARIANTS: Tuple[str, ...] = ("f1", "f2", "f3", "f4", "f5", "Andrea", "belinda", "steph")
ACCENTS: Tuple[str, ...] = ("en-us", "en")
# espeak pitch parameter bands (50 = the variant's own pitch; 35 is about -19 %, 65 +21 %)
PITCH_BANDS: Tuple[Tuple[int, int], ...] = ((44, 56), (30, 40), (60, 70))
PITCH_RANGE_RANGE = (35, 65)  # espeak pitch-range parameter (50 = the variant's own)
RATE_RANGE = (150, 190)  # words per minute
_N_ROUNDS = 6  # len(ACCENTS) * len(PITCH_BANDS) combinations, visited once per variant


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker.

    Attributes:
        id: speaker id (``spk01``...; zero-padded, so byte order is numeric order).
        voice: espeak-ng voice, ``accent+variant`` (e.g. ``en-us+m3``).
        pitch: espeak pitch parameter, 0-100.
        pitch_range: espeak pitch-range parameter, 0-100.
        rate: speaking rate, words per minute.
        gender: ``m`` or ``f``.
        appearance_seed: seed for the speaker's rendered mouth (shape, skin, lips).
    """

    id: str
    voice: str
    pitch: int
    pitch_range: int
    rate: int
    gender: str
    appearance_seed: int


def max_speakers() -> int:
    """The largest ``n`` for which :func:`make_speakers` gives distinct speakers."""
    return (len(MALE_VARIANTS) + len(FEMALE_VARIANTS)) * _N_ROUNDS


def _interleave(a: List, b: List) -> List:
    out = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            out.append(a[i])
        if i < len(b):
            out.append(b[i])
    return out


def make_speakers(n: int, seed: int = 0, prefix: str = "spk") -> List[Speaker]:
    """``n`` distinct speakers, alternately male and female; depends only on the arguments.

    Raises:
        InputError: ``n`` negative or above :func:`max_speakers`, or a bad ``prefix``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"number of speakers must be a non-negative integer, got {n!r}")
    if n > max_speakers():
        raise InputError(f"asked for {n} speakers but only {max_speakers()} distinct ones "
                         f"can be made from {len(MALE_VARIANTS) + len(FEMALE_VARIANTS)} "
                         f"voice variants")
    if not isinstance(prefix, str) or any(c.isspace() for c in prefix) or "_" in prefix:
        raise InputError(f"speaker id prefix must have no spaces or '_', got {prefix!r}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5BEA])
    males = [MALE_VARIANTS[i] for i in rng.permutation(len(MALE_VARIANTS))]
    females = [FEMALE_VARIANTS[i] for i in rng.permutation(len(FEMALE_VARIANTS))]
    order = _interleave([(v, "m") for v in males], [(v, "f") for v in females])
    first_accent = {v: int(rng.integers(len(ACCENTS))) for v, _ in order}
    width = max(2, len(str(n)))
    speakers: List[Speaker] = []
    seen = set()
    for r in range(_N_ROUNDS):
        for variant, gender in order:
            if len(speakers) == n:
                return speakers
            accent = ACCENTS[(first_accent[variant] + r) % len(ACCENTS)]
            band = r % len(PITCH_BANDS)
            key = (accent, variant, band)
            assert key not in seen  # guaranteed since len(ACCENTS) and bands are coprime
            seen.add(key)
            lo, hi = PITCH_BANDS[band]
            speakers.append(Speaker(
                id=f"{prefix}{len(speakers) + 1:0{width}d}",
                voice=f"{accent}+{variant}",
                pitch=int(rng.integers(lo, hi + 1)),
                pitch_range=int(rng.integers(PITCH_RANGE_RANGE[0], PITCH_RANGE_RANGE[1] + 1)),
                rate=int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1)),
                gender=gender,
                appearance_seed=int(rng.integers(0, 2 ** 31 - 1)),
            ))
    return speakers


def speaker_to_dict(spk: Speaker) -> Dict[str, object]:
    """A JSON-ready dict (for ``spk_info.json``)."""
    return asdict(spk)


_INT_FIELDS = ("pitch", "pitch_range", "rate", "appearance_seed")
_STR_FIELDS = ("id", "voice", "gender")


def speaker_from_dict(d: Dict[str, object]) -> Speaker:
    """Inverse of :func:`speaker_to_dict`, with checks.

    Raises:
        InputError: missing, unknown or mistyped fields, naming the speaker.
    """
    if not isinstance(d, dict):
        raise InputError(f"speaker entry must be a JSON object, got {type(d).__name__}")
    name = d.get("id", "?")
    fields = set(_INT_FIELDS + _STR_FIELDS)
    missing = sorted(fields - set(d))
    extra = sorted(set(d) - fields)
    if missing or extra:
        raise InputError(f"speaker {name!r}: missing fields {missing}, unknown fields {extra}")
    for k in _INT_FIELDS:
        if isinstance(d[k], bool) or not isinstance(d[k], int):
            raise InputError(f"speaker {name!r}: field {k!r} must be an integer, got {d[k]!r}")
    for k in _STR_FIELDS:
        if not isinstance(d[k], str) or not d[k]:
            raise InputError(f"speaker {name!r}: field {k!r} must be a non-empty string")
    if d["gender"] not in ("m", "f"):
        raise InputError(f"speaker {name!r}: gender must be 'm' or 'f', got {d['gender']!r}")
    return Speaker(**{k: d[k] for k in fields})
