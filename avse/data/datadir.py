"""Kaldi-style data directories: load, validate, fix, subset.

A data dir holds per-utterance tables ``<utt> <value>`` sorted in byte order:
``wav.scp`` (required; the input/mixture audio), ``utt2spk``, and as available
``spk1.scp``.. (dry targets), ``reverb1.scp``, ``noise1.scp``, ``dereverb1.scp``,
``rir1.scp``, ``video.scp``, ``lip.scp``, ``lip_conf.scp``, ``lip_feats.scp``, ``text``, ``utt2dur``,
``utt2snr``, ``utt2t60``, ``utt2noise``, ``utt2gain`` ..., and the visual tables of the other
talkers of a mixture (``video2.scp``, ``lip2.scp``, ``utt2face2``: :mod:`avse.data.sources`);
``spk2utt`` is derived
from ``utt2spk``. Other files (``noise_desc``, ``spk_info.json``, ``README``) are
dir-level and not checked per utterance.
"""
import logging
import os
import re
import shutil
from typing import Dict, Iterable, List

from avse.errors import InputError
from avse.io.scp import c_sorted, check_key, inverse_table, read_table, write_table

log = logging.getLogger(__name__)

# per-utterance tables whose values are file paths (or Kaldi pipe commands)
PATH_TABLE = re.compile(r"^(wav|spk\d+|reverb\d+|noise\d+|dereverb\d+|rir\d+|"
                        r"(video|lip|lip_conf|lip_rel|lip_feats)\d*)\.scp$")
AUDIO_TABLE = re.compile(r"^(wav|spk\d+|reverb\d+|noise\d+|dereverb\d+)\.scp$")
# per-utterance tables holding values
VALUE_TABLE = re.compile(r"^(utt2\w+|text)$")
DIR_LEVEL = {"spk2utt", "noise_desc", "spk2gender"}


def is_utt_table(name: str) -> bool:
    return bool(PATH_TABLE.match(name) or VALUE_TABLE.match(name))


class DataDir:
    """A data directory on disk. Tables are read lazily and cached."""

    def __init__(self, path: str):
        self.path = os.fspath(path)
        if not os.path.isdir(self.path):
            raise InputError(f"{self.path}: data directory not found")
        self._cache: Dict[str, Dict[str, str]] = {}

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def has(self, name: str) -> bool:
        return os.path.isfile(self.file(name))

    def table(self, name: str) -> Dict[str, str]:
        if name not in self._cache:
            if not self.has(name):
                raise InputError(f"{self.path}: missing {name}")
            self._cache[name] = read_table(self.file(name))
        return self._cache[name]

    def utt_tables(self) -> List[str]:
        return sorted(n for n in os.listdir(self.path) if is_utt_table(n) and self.has(n))

    @property
    def keys(self) -> List[str]:
        return list(self.table("wav.scp"))

    # ---------------------------------------------------------------- checks
    def problems(self, check_files: bool = True, check_audio: bool = False,
                 fs: int | None = None) -> List[str]:
        """All problems found, each naming the file and utterance; empty if valid."""
        out: List[str] = []
        if not self.has("wav.scp"):
            return [f"{self.path}: missing wav.scp"]
        tables = {}
        for name in self.utt_tables():
            try:
                tables[name] = self.table(name)
            except InputError as e:
                out.append(str(e))
        if out:
            return out
        ref = tables["wav.scp"]
        if not ref:
            out.append(f"{self.file('wav.scp')}: empty")
        ref_keys = set(ref)
        for name, tab in tables.items():
            keys = list(tab)
            for k in keys:
                try:
                    check_key(k, where=self.file(name))
                except InputError as e:
                    out.append(str(e))
            if keys != c_sorted(keys):
                out.append(f"{self.file(name)}: not sorted (LC_ALL=C); run utils/fix_data_dir.sh")
            if set(keys) != ref_keys:
                missing = c_sorted(ref_keys - set(keys))[:3]
                extra = c_sorted(set(keys) - ref_keys)[:3]
                out.append(f"{self.file(name)}: keys differ from wav.scp"
                           + (f"; missing e.g. {missing}" if missing else "")
                           + (f"; extra e.g. {extra}" if extra else ""))
        if "utt2spk" in tables:
            expect = inverse_table(tables["utt2spk"])
            if self.has("spk2utt"):
                got = {s: v.split() for s, v in read_table(self.file("spk2utt")).items()}
                if got != expect:
                    out.append(f"{self.file('spk2utt')}: inconsistent with utt2spk; run utils/fix_data_dir.sh")
            else:
                out.append(f"{self.path}: missing spk2utt (derive it with utils/utt2spk_to_spk2utt.pl)")
        else:
            out.append(f"{self.path}: missing utt2spk")
        if "utt2dur" not in tables:
            out.append(f"{self.path}: durations unknown (no utt2dur); run utils/fix_data_dir.sh")
        if check_files:
            for name, tab in tables.items():
                if not PATH_TABLE.match(name):
                    continue
                for k, v in tab.items():
                    if v.rstrip().endswith("|"):
                        continue
                    if not os.path.isfile(v):
                        out.append(f"{self.file(name)}: utterance {k!r}: file not found: {v}")
        if check_audio:
            from avse.io.audio import load_audio

            for name, tab in tables.items():
                if not AUDIO_TABLE.match(name):
                    continue
                for k, v in tab.items():
                    try:
                        load_audio(v, fs, utt=k, allow_silent=name.startswith("noise"))
                    except InputError as e:
                        out.append(f"{self.file(name)}: {e}")
        return out

    def validate(self, **kw) -> None:
        """Raise :class:`InputError` listing every problem (at most 20 shown)."""
        probs = self.problems(**kw)
        if probs:
            more = f"\n  ... and {len(probs) - 20} more" if len(probs) > 20 else ""
            raise InputError(f"invalid data directory {self.path}:\n  " + "\n  ".join(probs[:20]) + more)

    # ----------------------------------------------------------------- fixes
    def fix(self, write_durations: bool = True) -> Dict[str, int]:
        """Sort every table, keep the keys present in all per-utterance tables,
        drop utterances whose files are missing, rebuild spk2utt and utt2dur.

        Returns counts ``{"kept": n, "removed": m}``; removed keys are logged and
        listed in ``<dir>/.backup/removed``. The original tables go to ``.backup/``.
        """
        names = self.utt_tables()
        tables = {n: read_table(self.file(n)) for n in names}
        keys = set(tables["wav.scp"])
        for tab in tables.values():
            keys &= set(tab)
        bad = set()
        for n, tab in tables.items():
            if PATH_TABLE.match(n):
                bad |= {k for k in keys if not tab[k].rstrip().endswith("|") and not os.path.isfile(tab[k])}
        removed = c_sorted(set().union(*[set(t) for t in tables.values()]) - (keys - bad))
        keys -= bad
        backup = self.file(".backup")
        os.makedirs(backup, exist_ok=True)
        for n in names + (["spk2utt"] if self.has("spk2utt") else []):
            shutil.copy(self.file(n), os.path.join(backup, n))
        with open(os.path.join(backup, "removed"), "w") as f:
            f.writelines(k + "\n" for k in removed)
        if removed:
            log.warning("%s: removed %d utterances, e.g. %s", self.path, len(removed), removed[:3])
        for n, tab in tables.items():
            write_table(self.file(n), {k: tab[k] for k in keys})
        if "utt2spk" in tables:
            write_spk2utt(self.path)
        self._cache.clear()
        if write_durations and keys and "utt2dur" not in tables:
            write_utt2dur(self.path)
        return {"kept": len(keys), "removed": len(removed)}

    def subset(self, keys: Iterable[str], out_dir: str) -> "DataDir":
        """Copy the rows of ``keys`` of every per-utterance table into ``out_dir``."""
        keys = set(keys)
        os.makedirs(out_dir, exist_ok=True)
        for n in self.utt_tables():
            tab = self.table(n)
            write_table(os.path.join(out_dir, n), {k: v for k, v in tab.items() if k in keys})
        for n in os.listdir(self.path):
            if n in DIR_LEVEL - {"spk2utt"} or n.endswith(".json"):
                shutil.copy(self.file(n), os.path.join(out_dir, n))
        if self.has("utt2spk"):
            write_spk2utt(out_dir)
        return DataDir(out_dir)


def write_spk2utt(data_dir: str) -> None:
    """Derive ``spk2utt`` from ``utt2spk``."""
    u2s = read_table(os.path.join(data_dir, "utt2spk"))
    write_table(os.path.join(data_dir, "spk2utt"), {s: " ".join(u) for s, u in inverse_table(u2s).items()})


def write_utt2dur(data_dir: str) -> None:
    """Write ``utt2dur`` (seconds, from file headers) for ``wav.scp``."""
    from avse.io.audio import audio_info

    out = {}
    for k, v in read_table(os.path.join(data_dir, "wav.scp")).items():
        sr, _, n = audio_info(v, utt=k)
        out[k] = f"{n / sr:.4f}"
    write_table(os.path.join(data_dir, "utt2dur"), out)


def spread_keys(keys, n: int) -> list:
    """At most ``n`` (>= 1) of ``keys``, evenly spaced over their sorted order: in a Kaldi data
    dir, sorted keys are grouped by speaker, so a spread draws on every talker where the
    first ``n`` would often be one talker's."""
    keys, n = sorted(keys), int(n)
    if n < 1:
        raise ValueError(f"spread_keys: need n >= 1, got {n}")
    if len(keys) <= n:
        return keys
    if n == 1:
        return keys[:1]
    return [keys[round(i * (len(keys) - 1) / (n - 1))] for i in range(n)]
