"""The mini_av synthetic audio-visual corpus: plan, per-item generation, merge.

Speech is synthesised by espeak-ng (``avse.corpus.synthetic.espeak``) from sentences of an
in-repo grammar (``avse.corpus.synthetic.grammar``), spoken by voice variants
(``avse.corpus.synthetic.speakers``); each utterance gets a 25 fps 88x88 greyscale mouth video
rendered from the timed phonemes (``avse.corpus.synthetic.mouth``), in sync with the audio.
Noise recordings are procedural (``avse.corpus.synthetic.noise``); babble-like noises use
speech of speakers held apart from train/valid/test. Train and test noise instances
are disjoint (different random streams and different babble talkers).

The plan (who says what, which noise instance) depends only on ``(size, seed)``; each
item is generated from its own random stream, so the output is identical whatever
the number of jobs.
"""
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from avse.errors import InputError
from avse.utils.seeding import utt_rng

FS = 16000

# speakers per split, utterances per speaker, noise instances per type, seconds each.
# espeak-ng has 16 distinct voice variants: tiny and default use 16 main speakers, each
# with its own variant; the babble talkers (noise only) reuse variants at other pitches.
# large reuses variants for main speakers too (other accent and pitch band).
SIZES: Dict[str, dict] = {
    "tiny": dict(train=(11, 3), valid=(2, 2), test=(3, 2), babble_speakers=4,
                 noise_train=1, noise_test=1, noise_seconds=6.0),
    "default": dict(train=(11, 50), valid=(2, 10), test=(3, 8), babble_speakers=4,
                    noise_train=3, noise_test=2, noise_seconds=12.0),
    "large": dict(train=(24, 200), valid=(4, 25), test=(6, 20), babble_speakers=8,
                  noise_train=10, noise_test=5, noise_seconds=30.0),
}
SPLITS = ("train", "valid", "test")
BABBLE_LIKE = ("babble", "cafe")


@dataclass(frozen=True)
class UttItem:
    key: str
    split: str
    speaker: str
    text: str


@dataclass(frozen=True)
class NoiseItem:
    key: str
    split: str  # noise_train / noise_test
    noise_type: str
    seconds: float


@dataclass
class Plan:
    size: str
    seed: int
    speakers: Dict[str, object]  # id -> Speaker
    split_speakers: Dict[str, List[str]]
    babble_speakers: List[str]
    utts: List[UttItem] = field(default_factory=list)
    noises: List[NoiseItem] = field(default_factory=list)

    def items(self) -> Dict[str, object]:
        return {**{u.key: u for u in self.utts}, **{n.key: n for n in self.noises}}


def resolve_size(size: str, scale: float = 1.0) -> dict:
    """A named size, with utterances per speaker multiplied by ``scale``."""
    if size not in SIZES:
        raise InputError(f"unknown mini_av size {size!r}; choose from {sorted(SIZES)}")
    cfg = dict(SIZES[size])
    if scale != 1.0:
        if scale <= 0:
            raise InputError(f"scale must be positive, got {scale}")
        for s in SPLITS:
            n_spk, n_utt = cfg[s]
            cfg[s] = (n_spk, max(1, int(round(n_utt * scale))))
    return cfg


def make_plan(size: str = "default", seed: int = 0, scale: float = 1.0,
              noise_types: List[str] | None = None) -> Plan:
    """Decide speakers, sentences and noise instances (cheap; no audio is made)."""
    from avse.corpus.synthetic.grammar import make_sentences
    from avse.corpus.synthetic.noise import NOISES
    from avse.corpus.synthetic.speakers import make_speakers

    cfg = resolve_size(size, scale)
    n_main = sum(cfg[s][0] for s in SPLITS)
    speakers = make_speakers(n_main + cfg["babble_speakers"], seed=seed)
    rng = np.random.default_rng(seed)
    order = [s.id for s in speakers]
    split_speakers, i = {}, 0
    for s in SPLITS:
        split_speakers[s] = sorted(order[i:i + cfg[s][0]])
        i += cfg[s][0]
    babble = order[i:]
    n_utts = sum(cfg[s][0] * cfg[s][1] for s in SPLITS)
    sentences = make_sentences(n_utts, seed=seed)
    rng.shuffle(sentences)
    plan = Plan(size, seed, {s.id: s for s in speakers}, split_speakers, babble)
    j = 0
    for s in SPLITS:
        for spk in split_speakers[s]:
            for n in range(cfg[s][1]):
                plan.utts.append(UttItem(f"{spk}_{s}{n:04d}", s, spk, sentences[j]))
                j += 1
    types = noise_types or NOISES.names()
    for t in types:
        if t not in NOISES:
            raise InputError(f"unknown noise type {t!r}; choose from {NOISES.names()}")
    for split in ("noise_train", "noise_test"):
        for t in types:
            for n in range(cfg[split]):
                plan.noises.append(NoiseItem(f"{t}_{split.split('_')[1]}{n:02d}", split, t,
                                             cfg["noise_seconds"]))
    return plan


def babble_pool(plan: Plan, item: NoiseItem, n_talkers: int = 10) -> List[np.ndarray]:
    """Speech of held-apart speakers for a babble-like noise instance.

    Train and test instances use disjoint halves of the babble speakers (when there
    are at least two) and sentences from their own random stream.
    """
    from avse.corpus.synthetic.espeak import synthesize
    from avse.corpus.synthetic.grammar import SentenceGrammar

    spk = plan.babble_speakers
    if len(spk) >= 2:
        half = len(spk) // 2
        spk = spk[:half] if item.split == "noise_train" else spk[half:]
    rng = utt_rng(plan.seed, "babble", item.key)
    grammar = SentenceGrammar()
    pool = []
    for _ in range(n_talkers):
        s = plan.speakers[spk[int(rng.integers(len(spk)))]]
        syn = synthesize(grammar.sample(rng), voice=s.voice, rate=s.rate, pitch=s.pitch,
                         pitch_range=s.pitch_range, fs=FS)
        pool.append(syn.audio)
    return pool
