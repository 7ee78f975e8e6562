"""A noise data dir of the toolkit's procedural noises (``avse.corpus.synthetic.noise``), for
recipes whose corpus has no noise of its own::

    python -m avse.bin.prep_synthetic_noise --out_dir data/noise_test --wav_dir C/noise \\
        [--noise_types '[white, pink, traffic]'] [--per_type 2] [--seconds 20] [--seed 1]

Writes ``--per_type`` recordings of ``--seconds`` s per type to ``wav_dir/<type>_<i>.wav``
(16-bit, unit-RMS scaled to ``--rms``, peak at most 0.99) and the data dir
``wav.scp utt2noise utt2spk spk2utt utt2dur noise_desc``. Each recording is drawn
from its own stream ``utt_rng(seed, "noise", key)``: the same on every machine.
Babble-like types (``babble``, ``cafe``) need speech of held-apart talkers:
``--speech_dir`` (a data dir whose ``wav.scp`` at ``--fs`` supplies them). The work
is resumable: a re-run skips finished recordings and a finished dir.
"""
import argparse
import logging
import os
import sys

import numpy as np

from avse.corpus.synthetic.noise import NOISE_DESCRIPTIONS, NOISES, generate_noise
from avse.data.datadir import DataDir, spread_keys
from avse.data.uttjobs import Stage, merge_jobs, run_stage, stage_config
from avse.errors import InputError
from avse.io.audio import load_audio, rms, save_audio
from avse.utils.cli import run_main
from avse.utils.config import none_or, str2bool, yaml_value
from avse.utils.seeding import utt_rng

log = logging.getLogger("avse.prep_synthetic_noise")
BABBLE_LIKE = ("babble", "cafe")
DEFAULT_TYPES = ["white", "pink", "fan", "traffic", "engine", "music", "wind", "rain"]


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out_dir", required=True, help="noise data dir")
    p.add_argument("--wav_dir", required=True, help="where the recordings go")
    p.add_argument("--noise_types", type=yaml_value, default=DEFAULT_TYPES, help="YAML list of noise types")
    p.add_argument("--per_type", type=int, default=2, help="recordings per type")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each recording (s)")
    p.add_argument("--rms", type=float, default=0.1, help="RMS of each recording")
    p.add_argument("--fs", type=int, default=16000)
    p.add_argument("--speech_dir", type=none_or(str), default=None,
                   help="data dir of held-apart speech for babble-like types")
    p.add_argument("--max_speech", type=int, default=40,
                   help="utterances read from --speech_dir, evenly spaced over its sorted keys (every talker)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--progress", type=str2bool, default=True)
    p.add_argument("--verbose", type=int, default=1)
    return p


def _types(v) -> list:
    if isinstance(v, str):
        v = [s for s in v.replace(",", " ").split() if s]
    if not isinstance(v, (list, tuple)) or not v:
        raise InputError(f"--noise_types must be a non-empty list, got {v!r}")
    known = NOISES.names()
    bad = [t for t in v if t not in known]
    if bad:
        raise InputError(f"unknown noise type(s) {bad}; known: {known}")
    return sorted(set(v))


class NoiseMaker:
    """Inputs and the per-recording work ``key -> rows`` (keys ``<type>_<i>``)."""

    def __init__(self, args):
        self.args = args
        self.types = _types(args.noise_types)
        if args.per_type < 1 or args.seconds <= 0:
            raise InputError("--per_type must be >= 1 and --seconds > 0")
        self.pool = None
        babble = [t for t in self.types if t in BABBLE_LIKE]
        if babble:
            if not args.speech_dir:
                raise InputError(f"noise types {babble} need --speech_dir "
                                 "(speech of talkers held apart from the test speakers)")
            wav = DataDir(args.speech_dir).table("wav.scp")
            if args.max_speech < 1:
                raise InputError(f"--max_speech must be >= 1, got {args.max_speech}")
            self.pool = [load_audio(wav[k], args.fs, utt=k)[0] for k in spread_keys(wav, args.max_speech)]
        self.wav_dir = os.path.abspath(args.wav_dir)
        self.keys = [f"{t}_{i + 1}" for t in self.types for i in range(args.per_type)]

    def __call__(self, key: str) -> dict:
        a = self.args
        t = key.rsplit("_", 1)[0]
        resources = {"speech_pool": self.pool, "speech_fs": a.fs} if t in BABBLE_LIKE else {}
        x = generate_noise(t, a.seconds, a.fs, utt_rng(a.seed, "noise", key), **resources)
        x = x * (a.rms / max(rms(x), 1e-8))
        peak = float(np.max(np.abs(x)))
        if peak > 0.99:
            x = x * (0.99 / peak)
        path = os.path.join(self.wav_dir, f"{key}.wav")
        save_audio(path, x, a.fs)
        return {"wav.scp": path, "utt2noise": t, "utt2spk": t, "utt2dur": f"{len(x) / a.fs:.4f}"}

    def merge(self) -> None:
        merge_jobs(self.args.out_dir, extra={"noise_desc": {t: NOISE_DESCRIPTIONS[t] for t in self.types}})
        log.info("%s: %d noise recordings of %d types", self.args.out_dir, len(self.keys), len(self.types))


def run(args) -> None:
    def setup() -> Stage:
        maker = NoiseMaker(args)
        return Stage(keys=maker.keys, work=lambda: maker, merge=maker.merge)

    # no --merge option: the one job merges at once
    run_stage(args, args.out_dir, setup, stage_config(args), desc="noise")


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
