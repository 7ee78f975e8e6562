"""The stage-2 simulator: one noisy (reverberant, multi-talker) mixture per output key.

:class:`Simulator` holds the inputs of a job (clean speech and noise data dirs, the
options of :mod:`avse.bin.simulate`, which documents them and the outputs), plans the
output keys and builds one output utterance per call, deterministically in
``utt_rng(seed, key)``. Mixing: :mod:`avse.simulate.mix`; rooms: :mod:`avse.simulate.room`.
"""
import collections
import math
import os
from typing import Dict, List

import numpy as np

from avse.data.datadir import DataDir
from avse.data.sources import source_table
from avse.errors import InputError, StageError
from avse.io.audio import load_audio, save_audio
from avse.io.scp import c_sorted, check_key, read_table
from avse.simulate.mix import mix_utterance
from avse.simulate.room import room_config, sample_room, simulate_rirs
from avse.utils.fileio import atomic_path
from avse.utils.seeding import utt_rng

# utt2face: face centre for lip backends; lip_feats.scp: precomputed visual features (lip_encoder features)
COPIED_TABLES = ("text", "video.scp", "utt2phones", "utt2face", "lip_feats.scp")
#: tables also copied for every interferer i >= 2, under its per-source name (``video2.scp``,
#: :mod:`avse.data.sources`): what stage 3 and an audio-visual prior need to see talker i.
#: Not its ``text``/``utt2phones``: the interferer is cut to the target's length, so they
#: would describe speech that is not in the mixture.
SOURCE_TABLES = ("video.scp", "utt2face", "lip_feats.scp")


# ----------------------------------------------------------------- options
def _numbers(v, name: str) -> List[float]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, (list, tuple)) or not v or \
            not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
        raise InputError(f"--{name} must be a non-empty list of numbers, got {v!r}")
    return [float(x) for x in v]


def _names(v) -> List[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = [s for s in v.replace(",", " ").split() if s]
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise InputError(f"--noise_types must be a list of names, got {v!r}")
    return list(v)


def snr_tag(snr: float) -> str:
    """Key suffix of an SNR: ``_snr+05``, ``_snr-05``, ``_snr+00``, ``_snr+02.5``."""
    if float(snr).is_integer():
        return f"_snr{int(snr):+03d}"
    return f"_snr{snr:+05.1f}"


def _fmt(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.2f}"


def _wav_and_labels(d: DataDir, path: str, table: str, empty_hint: str, table_hint: str, label: str,
                    items: str):
    """``(wav.scp, <table>)`` of data dir ``d``: errors naming the file when ``wav.scp`` is
    empty, ``table`` is missing or lacks a key of ``wav.scp``."""
    wav = d.table("wav.scp")
    if not wav:
        raise InputError(f"{d.file('wav.scp')}: empty{empty_hint}")
    if not d.has(table):
        raise InputError(f"{path}: missing {table}{table_hint}")
    labels = d.table(table)
    missing = [k for k in wav if k not in labels]
    if missing:
        raise InputError(f"{d.file(table)}: no {label} for {len(missing)} {items}, e.g. {missing[:3]}")
    return wav, labels


class Simulator:
    """Everything one job needs: the inputs, the key plan and ``__call__(key)``."""

    def __init__(self, args):
        self.args = args
        a = args
        for opt in ("data_dir", "noise_dir", "out_dir"):
            if not getattr(a, opt):
                raise InputError(f"--{opt} is required")
        if not os.path.isdir(a.data_dir) or not os.path.isfile(os.path.join(a.data_dir, "wav.scp")):
            raise StageError(f"{a.data_dir}: clean speech data dir not found (no wav.scp); run stage 1 first")
        if not os.path.isdir(a.noise_dir) or not os.path.isfile(os.path.join(a.noise_dir, "wav.scp")):
            raise StageError(f"{a.noise_dir}: noise data dir not found (no wav.scp); run stage 1 first")
        if a.n_speakers < 1:
            raise InputError(f"--n_speakers must be >= 1, got {a.n_speakers}")
        if not 0 < a.peak <= 1:
            raise InputError(f"--peak must be in (0, 1], got {a.peak}")
        self.snrs = _numbers(a.snrs, "snrs")
        self.sirs = _numbers(a.sirs, "sirs")
        if a.room is not None and not isinstance(a.room, dict):
            raise InputError(f"--room must be a mapping or null, got {a.room!r}")
        self.room = room_config(a.room) if a.room is not None else None

        src = DataDir(a.data_dir)
        self.wav, self.utt2spk = _wav_and_labels(src, a.data_dir, "utt2spk", "", "", "speaker", "utterances")
        self.copied = {t: src.table(t) for t in COPIED_TABLES if src.has(t)}
        self.utts = c_sorted(self.wav)
        if a.fs is None:  # the corpus's own rate, read from its first utterance
            a.fs = load_audio(self.wav[self.utts[0]], None, utt=self.utts[0], allow_silent=True)[1]
        if a.fs < 1000:
            raise InputError(f"--fs must be at least 1000 Hz, got {a.fs}")
        if a.n_speakers > 1:
            n_spk = len(set(self.utt2spk[k] for k in self.utts))
            if n_spk < 2:
                raise InputError(f"--n_speakers {a.n_speakers} needs utterances of at least two speakers "
                                 f"in {a.data_dir}; found {n_spk}")

        nd = DataDir(a.noise_dir)
        self.noise_wav, utt2noise = _wav_and_labels(nd, a.noise_dir, "utt2noise",
                                                    "; no noise recordings", " (noise type of each recording)",
                                                    "type", "recordings")
        by_type: Dict[str, List[str]] = {}
        for k in c_sorted(self.noise_wav):
            by_type.setdefault(utt2noise[k], []).append(k)
        wanted = _names(a.noise_types)
        if wanted is None:
            wanted = sorted(by_type)
        unknown = [t for t in wanted if t not in by_type]
        if unknown:
            raise InputError(f"unknown noise type(s) {unknown}: {a.noise_dir} has {sorted(by_type)}")
        if not wanted:
            raise InputError(f"--noise_types selects no noise (types in {a.noise_dir}: {sorted(by_type)})")
        self.types = sorted(set(wanted))
        self.by_type = {t: by_type[t] for t in self.types}
        self.noise_desc = {}
        if nd.has("noise_desc"):
            desc = read_table(nd.file("noise_desc"))
            self.noise_desc = {t: desc[t] for t in self.types if t in desc}
        else:
            from avse.corpus.synthetic.noise import NOISE_DESCRIPTIONS

            self.noise_desc = {t: NOISE_DESCRIPTIONS[t] for t in self.types if t in NOISE_DESCRIPTIONS}
        self._noise_cache: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
        self.plan = self._plan()

    # --------------------------------------------------------------- keys
    def _plan(self) -> Dict[str, tuple]:
        """Output key -> (source utterance, nominal SNR or None for a random one)."""
        plan: Dict[str, tuple] = {}
        if self.args.snr_mode in ("all", "cycle"):
            tags = sorted({snr_tag(s): s for s in self.snrs}.items())
            for i, u in enumerate(c_sorted(self.utts)):
                for tag, s in (tags if self.args.snr_mode == "all" else [tags[i % len(tags)]]):
                    key = u + tag
                    check_key(key)
                    if key in plan:
                        raise InputError(f"output key {key!r} made twice; utterance ids collide with SNR suffixes")
                    plan[key] = (u, s)
        else:
            plan = {u: (u, None) for u in self.utts}
        return {k: plan[k] for k in c_sorted(plan)}

    @property
    def keys(self) -> List[str]:
        return list(self.plan)

    # --------------------------------------------------------------- audio
    def _noise(self, key: str) -> np.ndarray:
        if key in self._noise_cache:
            self._noise_cache.move_to_end(key)
            return self._noise_cache[key]
        x, _ = load_audio(self.noise_wav[key], self.args.fs, utt=key)
        self._noise_cache[key] = x
        if len(self._noise_cache) > 32:
            self._noise_cache.popitem(last=False)
        return x

    def _interferers(self, utt: str, rng: np.random.Generator) -> List[str]:
        k = self.args.n_speakers - 1
        used = {self.utt2spk[utt]}
        out = []
        for _ in range(k):
            cands = [u for u in self.utts if self.utt2spk[u] not in used]
            if not cands:  # fewer speakers than talkers: only avoid the target's speaker
                cands = [u for u in self.utts if self.utt2spk[u] != self.utt2spk[utt] and u not in out]
            if not cands:
                raise InputError(f"no interferer left for {utt!r}")
            u = cands[int(rng.integers(len(cands)))]
            out.append(u)
            used.add(self.utt2spk[u])
        return out

    def _path(self, sub: str, key: str, ext: str = ".wav") -> str:
        return os.path.join(os.path.abspath(self.args.out_dir), sub, key + ext)  # valid from any cwd

    def __call__(self, key: str) -> Dict[str, str]:
        a = self.args
        utt, snr = self.plan[key]
        rng = utt_rng(a.seed, key)
        if snr is None:
            snr = round(float(rng.uniform(min(self.snrs), max(self.snrs))), 2)
        ntype = self.types[int(rng.integers(len(self.types)))]
        recs = self.by_type[ntype]
        nkey = recs[int(rng.integers(len(recs)))]
        others = self._interferers(utt, rng) if a.n_speakers > 1 else []
        sirs = [float(rng.uniform(min(self.sirs), max(self.sirs))) for _ in others]
        sirs = [round(s, 2) for s in sirs]
        spec = sample_room(self.room, rng, n_sources=1 + len(others)) if self.room is not None else None

        sources = [load_audio(self.wav[u], a.fs, utt=u)[0] for u in [utt] + others]
        noise = self._noise(nkey)
        rirs = direct = None
        t60 = math.nan
        if spec is not None:
            rirs, direct, t60 = simulate_rirs(spec, a.fs, float(self.room["t60_decay_db"]))
        mix = mix_utterance(sources, noise, snr, sir_db=sirs or None, rirs=rirs, direct=direct,
                            peak=a.peak, rng=rng, crossfade=int(a.noise_crossfade * a.fs))

        def pick(x: np.ndarray) -> np.ndarray:
            return x[0] if (x.ndim == 2 and a.channels == "ref") else x

        rows: Dict[str, str] = {}
        for i, t in enumerate(mix["targets"], 1):
            rows[f"spk{i}.scp"] = p = self._path(f"spk{i}", key)
            save_audio(p, pick(t), a.fs, subtype=a.subtype)
        rows["noise1.scp"] = p = self._path("noise1", key)
        save_audio(p, pick(mix["noise"]), a.fs, subtype=a.subtype)
        if spec is not None:
            rows["reverb1.scp"] = p = self._path("reverb1", key)
            save_audio(p, pick(mix["reverb"][0]), a.fs, subtype=a.subtype)
            rows["rir1.scp"] = p = self._path("rir1", key, ".npy")
            with atomic_path(p) as tmp:
                np.save(tmp, np.ascontiguousarray(rirs[0], dtype=np.float32))
            rows["utt2t60"] = f"{spec.t60:.3f} {t60:.3f}"
            rows["utt2room"] = spec.to_json()
        rows["wav.scp"] = p = self._path("wav", key)
        save_audio(p, pick(mix["mixture"]), a.fs, subtype=a.subtype)
        n = mix["mixture"].shape[-1]
        rows["utt2snr"] = _fmt(snr)
        if others:
            rows["utt2sir"] = " ".join(_fmt(s) for s in sirs)
        rows["utt2noise"] = ntype
        rows["utt2gain"] = f"{mix['gain']:.6f}"
        rows["utt2source"] = " ".join([utt, nkey, f"{mix['noise_offset'][0] / a.fs:.4f}"] + others)
        rows["utt2spk"] = self.utt2spk[utt]
        rows["utt2dur"] = f"{n / a.fs:.4f}"
        for t, tab in self.copied.items():
            if utt in tab:
                rows[t] = tab[utt]
        for i, u in enumerate(others, 2):  # talker i's video (the order of utt2source)
            for t in SOURCE_TABLES:
                if t in self.copied and u in self.copied[t]:
                    rows[source_table(t, i)] = self.copied[t][u]
        return rows
