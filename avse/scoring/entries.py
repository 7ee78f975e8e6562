"""Score directories of an experiment: discovery, loading and the main table's cells.

Every ``score/`` directory holding a ``meta.json`` (written by ``avse.bin.score``) at
any depth under the experiment directory is one (system, test set) *entry*; its
``summary.json`` gives the means and its ``conditions.json`` the per-condition means.
The reports built on them (``RESULTS.md``: :mod:`avse.scoring.results`; the listening
page: :mod:`avse.listening`) share this discovery, the system order (``noisy`` first,
then in byte order) and the number formatting, so they always show the same values.

An entry is a dict: ``dir`` (the score directory), ``rel`` (its path relative to the
experiment directory), ``meta``, ``summary``, ``conditions`` (the JSON files),
``system``, ``test_set`` and ``name`` (the system's display name; systems named twice
in a test set get their path, see :func:`group_by_test_set`).
"""
import json
import math
import os
from typing import Dict, List, Sequence, Tuple

from avse.errors import InputError
from avse.metrics import DECIMALS, label

#: column order of the main tables; other metrics found follow in byte order
METRIC_ORDER = ["si_sdr", "si_sdri", "pesq_wb", "pesq_nb", "pesq_nb_raw", "estoi", "stoi", "sdr"]
NOISY = "noisy"
RTF_KEYS = ("rtf", "rtf_mean", "real_time_factor")
NFE_KEYS = ("nfe", "nfe_per_utt", "nfe_mean", "n_nfe")
#: how the separated sources of a row were scored (``assignment`` of ``meta.json``)
ASSIGNMENT_NOTES = {"pit": "permutation-invariant (the best pairing with the talkers per utterance)",
                    "fixed": "fixed assignment (output k against talker k, no permutation)"}
#: ``summary.json`` keys that are not metric means
SUMMARY_EXTRA = ("n_utts", "n_failed")


# ------------------------------------------------------------------------ loading
def find_score_dirs(exp_dir: str) -> List[str]:
    """Every ``.../score`` directory with a ``meta.json`` under ``exp_dir`` (sorted)."""
    if not os.path.isdir(exp_dir):
        raise InputError(f"{exp_dir}: experiment directory not found")
    out = []
    for root, dirs, files in os.walk(exp_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if os.path.basename(root) == "score" and "meta.json" in files:
            out.append(root)
    return sorted(out)


def read_json(path: str, required: bool = True):
    """The JSON object of ``path``; ``None`` when absent and not ``required``."""
    if not os.path.isfile(path):
        if required:
            raise InputError(f"{path}: not found (incomplete score directory?)")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON: {e}") from e


def load_entry(score_dir: str, exp_dir: str) -> dict:
    meta = read_json(os.path.join(score_dir, "meta.json"))
    summary = read_json(os.path.join(score_dir, "summary.json"))
    cond = read_json(os.path.join(score_dir, "conditions.json"), required=False) or {}
    rel = os.path.relpath(score_dir, exp_dir)
    parts = rel.split(os.sep)
    system = meta.get("system") or (parts[-3] if len(parts) >= 3 else parts[0])
    test_set = meta.get("test_set") or (parts[-2] if len(parts) >= 2 else "test")
    return {"dir": score_dir, "rel": rel, "meta": meta, "summary": summary, "conditions": cond,
            "system": str(system), "test_set": str(test_set), "name": str(system)}


def load_entries(exp_dir: str) -> List[dict]:
    """The entries of every score directory under ``exp_dir`` (empty list if none)."""
    return [load_entry(d, exp_dir) for d in find_score_dirs(exp_dir)]


def first_number(meta: dict, keys: Sequence[str]):
    """The first of ``keys`` in ``meta`` holding a number (not a boolean), else None."""
    for k in keys:
        v = meta.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return v
    return None


def _sort_systems(entries: List[dict]) -> List[dict]:
    def key(e):
        return (e["system"] != NOISY, e["system"].encode("utf-8"), e["rel"].encode("utf-8"))
    return sorted(entries, key=key)


def group_by_test_set(entries: List[dict]) -> Dict[str, List[dict]]:
    """``{test_set: [entries, noisy first]}``; systems named twice in a set get their path."""
    sets: Dict[str, List[dict]] = {}
    for e in entries:
        sets.setdefault(e["test_set"], []).append(e)
    out = {}
    for ts in sorted(sets, key=lambda s: s.encode("utf-8")):
        es = _sort_systems(sets[ts])
        counts: Dict[str, int] = {}
        for e in es:
            counts[e["system"]] = counts.get(e["system"], 0) + 1
        for e in es:
            if counts[e["system"]] > 1:
                e["name"] = f"{e['system']} ({os.path.dirname(os.path.dirname(e['rel'])) or e['rel']})"
        out[ts] = es
    return out


# ------------------------------------------------------------------ table values
def fmt_metric(v, metric: str) -> str:
    """A metric value as the reports print it (2 decimals for dB metrics, else 3; ``-``
    for a missing or undefined value)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{DECIMALS.get(metric, 3)}f}"


def metrics_of(entries: List[dict]) -> List[str]:
    """The metrics of the entries' summaries, in :data:`METRIC_ORDER`, then byte order."""
    found = set()
    for e in entries:
        found |= {k for k, v in e["summary"].items() if k not in SUMMARY_EXTRA
                  and (v is None or isinstance(v, (int, float)))}
    return [m for m in METRIC_ORDER if m in found] + sorted(found - set(METRIC_ORDER))


def summary_table(entries: List[dict]) -> Tuple[List[str], List[List[str]], List[str]]:
    """The main table of a test set as printed: ``(header, rows, notes)``.

    One row per entry: name, number of utterances, each metric's mean, then RTF and NFE
    when a ``meta.json`` has them. ``notes`` name the metrics left undefined (nan) for
    some utterances of a system, and how the sources of a separation were paired with
    the talkers (``assignment`` of ``meta.json``: ``pit`` or ``fixed``).
    """
    metrics = metrics_of(entries)
    rtf = [first_number(e["meta"], RTF_KEYS) for e in entries]
    nfe = [first_number(e["meta"], NFE_KEYS) for e in entries]
    head = ["system", "utts"] + [label(m) for m in metrics]
    if any(v is not None for v in rtf):
        head.append("RTF")
    if any(v is not None for v in nfe):
        head.append("NFE")
    rows, notes = [], []
    for e, r, n in zip(entries, rtf, nfe):
        row = [e["name"], str(e["summary"].get("n_utts", "-"))]
        row += [fmt_metric(e["summary"].get(m), m) for m in metrics]
        if "RTF" in head:
            row.append("-" if r is None else f"{r:.3g}")
        if "NFE" in head:
            row.append("-" if n is None else f"{n:g}")
        rows.append(row)
        how = ASSIGNMENT_NOTES.get(e["meta"].get("assignment"))
        if how:
            notes.append(f"{e['name']}: {e['meta'].get('n_sources')} sources, {how}")
        failed = {m: c for m, c in (e["summary"].get("n_failed") or {}).items() if c}
        if failed:
            notes.append(f"{e['name']}: undefined (nan, left out of the mean) for "
                         + ", ".join(f"{label(m)} {c} utt." for m, c in sorted(failed.items())))
    return head, rows, notes
