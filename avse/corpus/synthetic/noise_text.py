"""Paraphrased text descriptions of acoustic scenes, for the noise-embedding text encoder.

``describe(noise_type, rng, level=None, room=None)`` -> one sentence about a noise of
that type: either the corpus's own description (``NOISE_DESCRIPTIONS``) or a
paraphrase assembled from a template, a name of the source, one of its acoustic
features, a loudness word (``level``: ``quiet``, ``moderate``, ``loud``; random when
None) and a place (``room``: ``office``, ``hall``, ``outdoors``, ``car``, ``home``;
random when None). The words of the sources and features differ per type; templates,
levels and places are shared, so a text encoder must attend to what makes the noise,
not to the sentence frame. ``corpus(types, n_per_type, seed)`` gives the sentences the
tokenizer is trained on.
"""
from __future__ import annotations

import re

from typing import Dict, List, Sequence

import numpy as np

from avse.corpus.synthetic.noise import NOISE_DESCRIPTIONS
from avse.errors import InputError
from avse.utils.seeding import utt_rng

SOURCES: Dict[str, List[str]] = {
    "white": ["white noise", "a radio hiss", "static from an untuned radio", "a flat hiss", "TV static"],
    "pink": ["pink noise", "a steady waterfall", "a soft even rush", "a shower running", "a constant rushing sound"],
    "brown": ["brown noise", "a deep rumble", "distant surf", "a low roar", "rumbling waves far away"],
    "babble": ["a crowd of people talking", "many voices at once", "babble of a crowd", "a chattering group",
               "people chatting all around"],
    "cafe": ["a busy cafe", "a coffee shop", "a crowded restaurant", "a canteen at lunchtime", "a bistro"],
    "traffic": ["street traffic", "cars passing by", "a busy road", "vehicles driving past", "city traffic"],
    "engine": ["an idling engine", "a running motor", "an engine revving", "a diesel generator", "a truck engine"],
    "music": ["instrumental music", "a band playing", "a song with drums", "background music", "a melody with a beat"],
    "wind": ["gusty wind", "a strong breeze", "wind blowing", "a storm's gusts", "wind howling"],
    "rain": ["rain falling", "a rain shower", "raindrops on a roof", "a downpour", "drizzle on the pavement"],
    "fan": ["a ventilation fan", "an air conditioner", "a desk fan", "a cooling fan humming", "an air vent"],
}

FEATURES: Dict[str, List[str]] = {
    "white": ["a flat spectrum", "an even hiss at all pitches", "no rhythm at all", "a bright steady hiss"],
    "pink": ["less power at high pitches", "a steady soft rush", "a balanced even sound", "no change over time"],
    "brown": ["mostly low frequencies", "a dark muffled rumble", "a deep steady roar", "power falling with pitch"],
    "babble": ["overlapping unintelligible speech", "voices starting and stopping", "murmured words",
               "speech nobody can follow"],
    "cafe": ["cups and dishes clinking", "conversations and clattering plates", "a murmur with clinks of cutlery",
             "chatter and an espresso machine"],
    "traffic": ["engines passing with falling pitch", "a low rumble and horns", "tyres swishing past",
                "a car horn now and then"],
    "engine": ["a harmonic hum", "a low drifting drone", "pitch rising when it revs", "mechanical rattling"],
    "music": ["chords and a melody", "plucked notes over a beat", "a kick drum and hi-hat", "a rhythm and tune"],
    "wind": ["rushing that swells and fades", "a faint whistle in the gusts", "low whooshing",
             "bursts of rushing air"],
    "rain": ["dense clicking drops", "pattering drops over a hiss", "drops tapping on a hard surface",
             "a soft crackle of drops"],
    "fan": ["a steady airflow and a hum", "a whirring blade tone", "a constant whoosh", "a droning hum"],
}

LEVELS: Dict[str, List[str]] = {
    "quiet": ["quiet", "faint", "soft", "barely audible"],
    "moderate": ["moderate", "noticeable", "medium", "clear"],
    "loud": ["loud", "very loud", "overwhelming", "strong"],
}
ROOMS: Dict[str, List[str]] = {
    "office": ["in an office", "in a meeting room", "at my desk"],
    "hall": ["in a large hall", "in a big reverberant room", "in a station hall"],
    "outdoors": ["outdoors", "outside", "in the open air"],
    "car": ["in a car", "inside a vehicle", "from the passenger seat"],
    "home": ["at home", "in the living room", "in a kitchen"],
}
TEMPLATES = [
    "{Level} {bare} {room}.",
    "The background is {level} {bare} with {feature}.",
    "Recorded {room}: {source}, {feature}.",
    "{Source} {room}, {level}.",
    "A recording with {level} {bare} in the background.",
    "Noise of {source}; {feature}.",
    "You can hear {source} {room}, with {feature}.",
    "{Feature} from {source}.",
    "The noise is {source}, {level}, with {feature}.",
]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def describe(noise_type: str, rng: np.random.Generator, level: str | None = None,
             room: str | None = None, p_original: float = 0.1) -> str:
    """One random sentence describing ``noise_type`` (module docstring)."""
    if noise_type not in SOURCES:
        raise InputError(f"no descriptions for noise type {noise_type!r}; known: {sorted(SOURCES)}")
    if level is not None and level not in LEVELS:
        raise InputError(f"level must be one of {sorted(LEVELS)}, got {level!r}")
    if room is not None and room not in ROOMS:
        raise InputError(f"room must be one of {sorted(ROOMS)}, got {room!r}")
    if rng.random() < p_original:
        return NOISE_DESCRIPTIONS[noise_type]
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    level_w = pick(LEVELS[level or pick(sorted(LEVELS))])
    room_w = pick(ROOMS[room or pick(sorted(ROOMS))])
    source, feature = pick(SOURCES[noise_type]), pick(FEATURES[noise_type])
    t = pick(TEMPLATES)
    bare = re.sub(r"^(a|an) ", "", source)  # after a loudness word: "loud busy cafe"
    return t.format(level=level_w, Level=_cap(level_w), source=source, Source=_cap(source), bare=bare,
                    room=room_w, feature=feature, Feature=_cap(feature))


def corpus(types: Sequence[str], n_per_type: int = 200, seed: int = 0) -> List[str]:
    """Sentences for training the tokenizer: the originals and ``n_per_type`` paraphrases per type."""
    out = [NOISE_DESCRIPTIONS[t] for t in types]
    for t in types:
        rng = utt_rng(seed, "noise_text", t)
        out += [describe(t, rng, p_original=0.0) for _ in range(int(n_per_type))]
    return out
