"""The audio behind a test set's score entries: rows of the listening page.

A test set's rows are, in order:

* ``input``: the noisy input, from the ``noisy`` entry's estimate scp (its metrics are
  the input's scores), else ``wav.scp`` of the entries' data dir;
* ``reference``: the references the entries were scored against (``ref_scp`` of
  ``meta.json``; the entry with the most sources gives them, e.g. ``spk1.scp``,
  ``spk2.scp`` of a two-talker set);
* ``system``: every other entry, with the estimate scps of its ``meta.json``
  (``inf_scp``; one per source); entries of the same estimates (sources scored against
  their own talkers and again permutation-invariantly, ``<name>_pit``) share the first
  one's row, whose label names the others.

Every path of ``meta.json`` is absolute. When an scp named there no longer exists (an
experiment directory that was moved), the file of the same name next to the score
directory is used (``<system>/<test_set>/wav.scp``). Values of an scp that are relative
paths are resolved as the recipe wrote them: against the current directory, else
against the first folder above the scp where the file exists (the recipe directory).

Nothing here raises for a missing output: :meth:`AudioTable.lookup` returns the reason
instead, which the page shows in place of the player and the command logs.
"""
import math
import os
from typing import Dict, List, Optional, Tuple

from avse.errors import InputError
from avse.io.scp import read_table
from avse.scoring.entries import NOISY, metrics_of

INPUT, REFERENCE, SYSTEM = "input", "reference", "system"
CONDITION_FILES = (("utt2snr", "SNR", "dB"), ("utt2noise", "noise", ""), ("utt2t60", "T60", "s"))


def resolve(value: str, scp: str) -> str:
    """A path as a Kaldi table ``scp`` holds it, made readable (module doc); a pipe
    command (``... |``) or an absolute path is returned as it is."""
    if value.rstrip().endswith("|") or os.path.isabs(value) or os.path.exists(value):
        return value
    d = os.path.dirname(os.path.abspath(scp))
    while True:
        cand = os.path.join(d, value)
        if os.path.exists(cand):
            return cand
        up = os.path.dirname(d)
        if up == d:
            return value
        d = up


class AudioTable:
    """One scp of audio; ``problem`` says why it cannot be read (None when it can)."""

    def __init__(self, path: str):
        self.path = path
        self.table: Dict[str, str] = {}
        self.problem: Optional[str] = None
        try:
            self.table = read_table(path)
        except InputError as e:
            self.problem = str(e) if os.path.isfile(path) else f"{path}: not found"

    def lookup(self, utt: str) -> Tuple[Optional[str], Optional[str]]:
        """``(readable path or pipe, None)``, or ``(None, why it is missing)``."""
        if self.problem:
            return None, self.problem
        if utt not in self.table:
            return None, f"{self.path}: no entry for utterance {utt!r}"
        path = resolve(self.table[utt], self.path)
        if not path.rstrip().endswith("|") and not os.path.isfile(path):
            return None, f"{path}: audio file not found (utterance {utt!r} of {self.path})"
        return path, None


def _scp_of(entry: dict, path: str) -> str:
    """``path`` if it exists, else the file of that name next to the score directory."""
    if os.path.isfile(path):
        return path
    near = os.path.join(os.path.dirname(entry["dir"]), os.path.basename(path))
    return near if os.path.isfile(near) else path


def _paths(entry: dict, key: str) -> List[str]:
    v = entry["meta"].get(key)
    return [v] if isinstance(v, str) else [p for p in (v or []) if isinstance(p, str)]


def read_metric_tables(entry: dict, metrics: List[str]) -> Dict[str, Dict[str, float]]:
    """``{metric: {utt: value}}`` from the per-utterance files of a score directory
    (``<score>/<metric>``; a metric without a file is left out)."""
    out = {}
    for m in metrics:
        path = os.path.join(entry["dir"], m)
        if not os.path.isfile(path):
            continue
        vals = {}
        for utt, v in read_table(path).items():
            try:
                vals[utt] = float(v.split()[0])
            except ValueError:
                raise InputError(f"{path}: utterance {utt!r}: expected a number, got {v!r}") from None
        out[m] = vals
    return out


def _row(slug: str, label: str, kind: str, entry: Optional[dict], scps: List[str], metrics) -> dict:
    return {"slug": slug, "label": label, "kind": kind, "entry": entry,
            "tables": [AudioTable(p) for p in scps],
            "values": read_metric_tables(entry, metrics) if entry else {}}


def test_set_rows(entries: List[dict]) -> Tuple[List[dict], List[str], Optional[str]]:
    """``(rows, metrics, data_dir)`` of one test set's entries (noisy first, as
    :func:`avse.scoring.entries.group_by_test_set` orders them).

    Each row: ``slug`` (a name for its files: the system's path under the experiment
    directory), ``label``, ``kind``, ``entry`` (None
    for the reference and a noisy input without scores), ``tables`` (one
    :class:`AudioTable` per source) and ``values`` (``{metric: {utt: value}}``).
    """
    metrics = metrics_of(entries)
    data_dir = next((e["meta"]["data_dir"] for e in entries if e["meta"].get("data_dir")), None)
    noisy = next((e for e in entries if e["system"] == NOISY), None)
    rows = []
    if noisy is not None or data_dir:
        scps = [_scp_of(noisy, p) for p in _paths(noisy, "inf_scp")[:1]] if noisy else []
        rows.append(_row("input", "noisy input", INPUT, noisy,
                         scps or [os.path.join(data_dir or os.path.dirname(noisy["dir"]), "wav.scp")],
                         metrics))
    refs = max((_paths(e, "ref_scp") for e in entries), key=len, default=[])
    if refs:
        rows.append(_row("reference", "clean reference", REFERENCE, None, refs, metrics))
    by_audio = {}   # the same estimates scored twice (a "<name>_pit" entry) make one row
    for e in entries:
        if e is noisy:
            continue
        scps = [_scp_of(e, p) for p in _paths(e, "inf_scp")]
        if not scps:
            scps = [os.path.join(os.path.dirname(e["dir"]), "wav.scp")]
        audio = tuple(os.path.abspath(p) for p in scps)
        if audio in by_audio:
            by_audio[audio]["label"] += f" (also scored as {e['name']})"
            continue
        rows.append(_row(os.path.dirname(os.path.dirname(e["rel"])) or e["rel"], e["name"], SYSTEM, e,
                         scps, metrics))
        by_audio[audio] = rows[-1]
    return rows, metrics, data_dir


def candidate_utts(rows: List[dict]) -> List[str]:
    """Every utterance scored by some entry of the test set, else every utterance of the
    input's scp."""
    keys = set()
    for r in rows:
        for vals in r["values"].values():
            keys |= set(vals)
    if not keys:
        for r in rows:
            if r["kind"] == INPUT:
                keys |= set(r["tables"][0].table)
    return sorted(keys)


def utt_conditions(data_dir: Optional[str], utts: List[str]) -> Dict[str, str]:
    """``{utt: "SNR 5 dB, noise babble, T60 0.42 s"}`` from the data dir's condition
    tables (first field of each; an utterance without any gets no text)."""
    tables = []
    for name, title, unit in CONDITION_FILES:
        path = os.path.join(data_dir, name) if data_dir else ""
        if path and os.path.isfile(path):
            tables.append((read_table(path), title, unit))
    out = {}
    for u in utts:
        parts = [f"{title} {t[u].split()[0]}{' ' + unit if unit else ''}"
                 for t, title, unit in tables if u in t]
        out[u] = ", ".join(parts)
    return out


def utt_value(row: dict, metric: str, utt: str) -> Optional[float]:
    """The row's score of ``utt`` for ``metric``; None if not scored or undefined (nan)."""
    v = row["values"].get(metric, {}).get(utt)
    return v if v is not None and math.isfinite(v) else None
