"""Build the listening page folder of an experiment (see :mod:`avse.listening`).

Resumable: every file written is recorded in ``OUT/.manifest.json`` with a signature of
what it was made from (the source audio's path, size and modification time, and the
settings; for a spectrogram those of every row of its utterance, as they share one
colour scale; for a page its text). A file whose signature is unchanged is not made
again; a page is rewritten only when its text changes; files of an earlier build that
the new one no longer lists (an utterance no longer selected, a test set left out) are
deleted. A second run on an unchanged experiment therefore changes nothing.
"""
import json
import logging
import os
import re
from typing import Dict, List, Optional, Sequence

import yaml

from avse.errors import InputError, StageError
from avse.io.audio import load_audio
from avse.listening import html, media
from avse.listening.select import select_utts
from avse.listening.sources import (REFERENCE, SYSTEM, candidate_utts, test_set_rows, utt_conditions,
                                    utt_value)
from avse.scoring.entries import fmt_metric, group_by_test_set, load_entries, summary_table
from avse.utils.fileio import atomic_open, digest, source_signature, write_json

log = logging.getLogger("avse.listening")

MANIFEST = ".manifest.json"


def safe_names(names: Sequence[str]) -> Dict[str, str]:
    """``{name: file name}``: characters other than letters, digits and ``._+-`` become
    ``_``; names that would collide get ``-2``, ``-3``, ..."""
    out, used = {}, set()
    for n in names:
        base = re.sub(r"[^A-Za-z0-9._+-]", "_", n).lstrip(".") or "_"
        cand, i = base, 1
        while cand.lower() in used:  # case-insensitive file systems
            i += 1
            cand = f"{base}-{i}"
        used.add(cand.lower())
        out[n] = cand
    return out


class Builder:
    """One build into ``out_dir``; ``old`` and ``new`` are the manifests before and after."""

    def __init__(self, out_dir: str, audio_format: str, normalize: str):
        media.check_options(audio_format, normalize)
        self.out_dir, self.audio_format, self.normalize = out_dir, audio_format, normalize
        self.old = self._read_manifest()
        self.new: Dict[str, str] = {}
        self.counts = {"clips": 0, "images": 0, "up_to_date": 0, "missing": 0}

    def _read_manifest(self) -> Dict[str, str]:
        path = os.path.join(self.out_dir, MANIFEST)
        if not os.path.isfile(path):
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                old = json.load(f)
        except json.JSONDecodeError as e:
            log.warning("%s: unreadable (%s); every file is made again", path, e)
            return {}
        return old if isinstance(old, dict) else {}

    def fresh(self, rel: str, sig: str) -> bool:
        """Record ``rel`` with ``sig``; True when the file exists with that signature."""
        self.new[rel] = sig
        return self.old.get(rel) == sig and os.path.isfile(os.path.join(self.out_dir, rel))

    def write_text(self, rel: str, text: str) -> None:
        """Write ``text`` to ``rel`` unless the file already holds it."""
        self.new[rel] = digest(text)
        path = os.path.join(self.out_dir, rel)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    return
        with atomic_open(path, encoding="utf-8") as f:
            f.write(text)

    def save(self, manifest: Dict[str, str]) -> None:
        path = os.path.join(self.out_dir, MANIFEST)
        if manifest != self.old or not os.path.isfile(path):
            write_json(path, manifest)

    def checkpoint(self) -> None:
        """Save what is made so far (a killed build keeps it), without deleting anything."""
        self.save({**self.old, **self.new})

    def finish(self) -> None:
        """Delete the files of the old build that the new one does not list; save the manifest."""
        top = os.path.abspath(self.out_dir)
        for rel in sorted(set(self.old) - set(self.new)):
            path = os.path.join(top, rel)
            if os.path.isfile(path):
                os.unlink(path)
            d = os.path.dirname(path)
            while d != top and os.path.isdir(d) and not os.listdir(d):
                os.rmdir(d)
                d = os.path.dirname(d)
        self.save(self.new)

    # ------------------------------------------------------------------ one utterance
    def utterance(self, utt: str, sdir: str, udir: str, rows: List[dict], row_names: Dict[str, str],
                  fs: int, problems: Dict[str, None]) -> List[dict]:
        """Clips and spectrograms of ``utt`` for every row, made where not fresh, in
        ``sdir/udir``; returns the clips (``row``, ``source``, ``problem``, and ``audio``
        and ``img`` relative to ``sdir``)."""
        ext = media.AUDIO_FORMATS[self.audio_format][1]
        clips = []
        for r in rows:
            multi = len(r["tables"]) > 1
            for k, table in enumerate(r["tables"], 1):
                path, problem = table.lookup(utt)
                stem = f"{udir}/{row_names[r['slug']]}" + (f"_s{k}" if multi else "")
                clips.append({"row": r, "source": f"source {k}" if multi else "", "path": path,
                              "problem": problem, "audio": stem + ext, "img": stem + ".png"})
        settings = f"{self.audio_format}|{self.normalize}|{fs}"
        ok = [c for c in clips if not c["problem"]]
        for c in ok:
            c["sig"] = f"{source_signature(c['path'])}|{settings}"
        img_sig = digest("|".join(c["sig"] for c in ok) + f"|{media.DYN_RANGE_DB}|{media.IMAGE_PX}")
        for c in ok:
            c["audio_fresh"] = self.fresh(f"{sdir}/{c['audio']}", c["sig"])
            c["img_fresh"] = self.fresh(f"{sdir}/{c['img']}", img_sig)
        todo = [c for c in ok if not (c["audio_fresh"] and c["img_fresh"])]
        self.counts["up_to_date"] += len(ok) - len(todo)
        if todo:
            self._render(utt, ok, os.path.join(self.out_dir, sdir), fs)
        for c in clips:
            if c["problem"]:
                self.new.pop(f"{sdir}/{c['audio']}", None)
                self.new.pop(f"{sdir}/{c['img']}", None)
                self.counts["missing"] += 1
                msg = f"{c['row']['label']}: {c['problem']}"
                if msg not in problems:
                    log.warning("%s", msg)
                problems[msg] = None
        return clips

    def _render(self, utt: str, ok: List[dict], folder: str, fs: int) -> None:
        """Load every row's audio of ``utt`` (one colour scale needs them all) and write
        the files that are not fresh into ``folder``."""
        specs = {}
        for c in ok:
            try:
                x, _ = load_audio(c["path"], fs, utt=utt, resample_to_fs=True, allow_silent=True)
            except InputError as e:
                c["problem"] = str(e)
                continue
            c["x"] = media.level(x, self.normalize)
            specs[id(c)] = media.stft_db(c["x"], fs)
        vmin, vmax = media.colour_range(specs.values())
        for c in ok:
            if c["problem"]:
                continue
            if not c["audio_fresh"]:
                media.write_clip(os.path.join(folder, c["audio"]), c["x"], fs, self.audio_format)
                self.counts["clips"] += 1
            if not c["img_fresh"]:
                media.write_spectrogram(os.path.join(folder, c["img"]), specs[id(c)], vmin, vmax)
                self.counts["images"] += 1

    # ------------------------------------------------------------------- one test set
    def test_set(self, name: str, sdir: str, entries: List[dict], max_utts: int) -> dict:
        """Write ``sdir/index.html`` and its media; returns the index line's fields."""
        rows, metrics, data_dir = test_set_rows(entries)
        fs = int(next((e["meta"]["fs"] for e in entries if e["meta"].get("fs")), 16000))
        scored = candidate_utts(rows)
        utts = select_utts(scored, max_utts, data_dir)
        utt_names = safe_names(utts)
        row_names = safe_names([r["slug"] for r in rows])
        conditions = utt_conditions(data_dir, utts)
        problems: Dict[str, None] = {}
        blocks = []
        for u in utts:
            clips = self.utterance(u, sdir, utt_names[u], rows, row_names, fs, problems)
            shown = []
            for r in rows:
                vals = {m: fmt_metric(utt_value(r, m, u), m) for m in metrics if r["kind"] != REFERENCE}
                shown.append({"label": r["label"], "kind": r["kind"], "values": vals,
                              "clips": [c for c in clips if c["row"] is r]})
            blocks.append(html.utterance_html(u, f"u-{utt_names[u]}", conditions[u], shown, metrics))
        head, trows, notes = summary_table(entries)
        text = html.test_set_page(name, html.summary_html(head, trows, notes, metrics), blocks,
                                  [(f"u-{utt_names[u]}", u) for u in utts], list(problems),
                                  self._settings(len(utts), len(scored), data_dir, fs))
        self.write_text(f"{sdir}/index.html", text)
        self.checkpoint()
        return {"name": name, "link": f"{sdir}/index.html", "n_utts": len(utts), "n_missing": len(problems),
                "n_systems": sum(r["kind"] == SYSTEM for r in rows)}

    def _settings(self, n: int, total: int, data_dir: Optional[str], fs: int) -> str:
        by_snr = data_dir and os.path.isfile(os.path.join(data_dir, "utt2snr"))
        level = {"rms": f"every clip at {media.RMS_DBFS:g} dBFS RMS (peak at most {media.PEAK_MAX})",
                 "peak": f"every clip peak-normalised to {media.PEAK_DBFS:g} dBFS",
                 "none": "levels as in the files"}[self.normalize]
        return (f"{n} of {total} scored utterances, spread evenly "
                f"{'over the SNRs of utt2snr' if by_snr else 'over the utterance list'}. Audio: "
                f"16-bit {self.audio_format.upper()}, {level}. Spectrograms: log magnitude, 0 to "
                f"{fs / 2000:g} kHz bottom to top, one colour scale per utterance spanning "
                f"{media.DYN_RANGE_DB:g} dB below its loudest bin.")


def build_pages(exp_dir: str, out_dir: str, max_utts: int = 6,
                test_sets: Optional[Sequence[str]] = None, audio_format: str = "flac",
                normalize: str = "rms", title: str = "Listening page", config: Optional[dict] = None) -> dict:
    """Build ``out_dir`` from the score directories under ``exp_dir`` (``config``: the
    command's options, saved as ``out_dir/config.yaml``).

    Returns:
        ``{"sets": [index fields per test set], "counts": {clips, images, up_to_date, missing}}``.
    Raises:
        StageError: no score directory under ``exp_dir``.
        InputError: an unknown test set in ``test_sets``, a bad option.
    """
    by_set = group_by_test_set(load_entries(exp_dir))
    if not by_set:
        raise StageError(f"{exp_dir}: no score/meta.json found; run the scoring stage first")
    if test_sets:
        unknown = [t for t in test_sets if t not in by_set]
        if unknown:
            raise InputError(f"{exp_dir}: no scores of test set(s) {', '.join(unknown)}; "
                             f"scored: {', '.join(by_set)}")
        by_set = {t: es for t, es in by_set.items() if t in test_sets}
    builder = Builder(out_dir, audio_format, normalize)
    set_names = safe_names(list(by_set))
    sets = [builder.test_set(ts, set_names[ts], es, max_utts) for ts, es in by_set.items()]
    builder.write_text("index.html", html.index_page(title, sets, exp_dir))
    if config is not None:
        builder.write_text("config.yaml", yaml.safe_dump(config, sort_keys=True, default_flow_style=False))
    builder.finish()
    return {"sets": sets, "counts": builder.counts}
