"""Per-condition breakdown of per-utterance scores.

Conditions come from tables of a data dir, when present:

============ ========== =====================================================
table        condition  grouping
============ ========== =====================================================
``utt2snr``  ``snr``    by SNR value (first field, dB), in numeric order
``utt2noise``  ``noise``  by noise type (first field), in byte order
``utt2t60``  ``t60``    first field = target T60 (s), binned by edges
                        (default 0, 0.3, 0.6, 1.0: ``[0, 0.3)``, ``[0.3, 0.6)``,
                        ``[0.6, 1)``, ``[1, inf)``)
============ ========== =====================================================

Scored utterances missing from a table form the group ``n/a`` (listed last).

The table (``conditions.json``) is::

    {"snr": {"table": "utt2snr", "unit": "dB",
             "groups": [{"value": "-5", "n": 12, "means": {"si_sdr": 3.1, ...},
                         "n_failed": {"si_sdr": 0, ...}}, ...]},
     "noise": {...}, "t60": {...}}
"""
import math
import os
from typing import Dict, List, Mapping, Sequence, Tuple

from avse.errors import InputError
from avse.io.scp import c_sorted, read_table

DEFAULT_T60_BINS = (0.0, 0.3, 0.6, 1.0)
MISSING = "n/a"

# condition -> (table, unit)
CONDITION_TABLES = {"snr": ("utt2snr", "dB"), "noise": ("utt2noise", ""), "t60": ("utt2t60", "s")}


def fmt_num(v: float) -> str:
    """Short label for a number: 5.0 -> '5', -2.5 -> '-2.5'."""
    return f"{v:g}"


def t60_labels(edges: Sequence[float]) -> List[str]:
    edges = list(edges)
    labels = [f"[{fmt_num(a)}, {fmt_num(b)})" for a, b in zip(edges[:-1], edges[1:])]
    return labels + [f"[{fmt_num(edges[-1])}, inf)"]


def t60_bin(value: float, edges: Sequence[float]) -> str:
    """Label of the bin of ``value``; below the first edge: ``< edge``."""
    edges = list(edges)
    if value < edges[0]:
        return f"< {fmt_num(edges[0])}"
    labels = t60_labels(edges)
    for i in range(len(edges) - 1, -1, -1):
        if value >= edges[i]:
            return labels[i]
    raise AssertionError("unreachable")


def check_bins(edges: Sequence[float]) -> List[float]:
    edges = [float(e) for e in edges]
    if not edges or any(b <= a for a, b in zip(edges[:-1], edges[1:])):
        raise InputError(f"T60 bin edges must be a non-empty increasing list, got {edges}")
    return edges


def _first_field(path: str, key: str, value: str, numeric: bool):
    field = value.split()[0]
    if not numeric:
        return field
    try:
        v = float(field)
    except ValueError:
        raise InputError(f"{path}: utterance {key!r}: expected a number, got {field!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{path}: utterance {key!r}: value {field!r} is not finite")
    return v


def group_keys(data_dir: str, keys: Sequence[str],
               t60_bins: Sequence[float] = DEFAULT_T60_BINS) -> Dict[str, List[Tuple[str, List[str]]]]:
    """Group ``keys`` by every condition table found in ``data_dir``.

    Returns:
        ``{condition: [(value label, [keys...]), ...]}`` in display order; conditions
        whose table is absent are left out.
    """
    edges = check_bins(t60_bins)
    out: Dict[str, List[Tuple[str, List[str]]]] = {}
    for cond, (table, _) in CONDITION_TABLES.items():
        path = os.path.join(data_dir, table)
        if not os.path.isfile(path):
            continue
        tab = read_table(path)
        groups: Dict[str, List[str]] = {}
        order: Dict[str, float] = {}
        missing: List[str] = []
        for k in keys:
            if k not in tab:
                missing.append(k)
                continue
            v = _first_field(path, k, tab[k], numeric=cond != "noise")
            if cond == "snr":
                lab = fmt_num(v)
                order[lab] = v
            elif cond == "t60":
                lab = t60_bin(v, edges)
                order[lab] = edges[0] - 1 if lab.startswith("<") else edges[t60_labels(edges).index(lab)]
            else:
                lab = v
            groups.setdefault(lab, []).append(k)
        if cond == "noise":
            labels = c_sorted(groups)
        else:
            labels = sorted(groups, key=lambda lab: order[lab])
        rows = [(lab, groups[lab]) for lab in labels]
        if missing:
            rows.append((MISSING, missing))
        out[cond] = rows
    return out


def condition_table(groups: Mapping[str, List[Tuple[str, List[str]]]],
                    values: Mapping[str, Mapping[str, float]]) -> Dict[str, dict]:
    """Means per metric and group.

    Args:
        groups: from :func:`group_keys`.
        values: ``{metric: {utt: value}}``.
    Returns:
        The ``conditions.json`` structure (see the module doc); means over finite
        values (``None`` when a group has none).
    """
    out: Dict[str, dict] = {}
    for cond, rows in groups.items():
        table, unit = CONDITION_TABLES[cond]
        grp = []
        for lab, keys in rows:
            means, failed = {}, {}
            for m, vals in values.items():
                v = [vals[k] for k in keys if k in vals and math.isfinite(vals[k])]
                means[m] = sum(v) / len(v) if v else None
                failed[m] = sum(1 for k in keys if k in vals and not math.isfinite(vals[k]))
            grp.append({"value": lab, "n": len(keys), "means": means, "n_failed": failed})
        out[cond] = {"table": table, "unit": unit, "groups": grp}
    return out


def cond_header(cond: str, value: str, unit: str) -> str:
    """Column/row label of a condition value: ``5 dB``, ``babble``, ``[0.3, 0.6) s``."""
    if value == MISSING or not unit:
        return value
    return f"{value} {unit}"


COND_TITLES = {"snr": "SNR", "noise": "noise type", "t60": "T60"}


def conditions_markdown(table: Mapping[str, dict], metrics: Sequence[str], title: str = "") -> str:
    """Markdown rendering of one system's :func:`condition_table`: one table per condition."""
    from avse.metrics import DECIMALS, label

    lines = [f"# {title}" if title else "# Scores by condition", ""]
    if not table:
        lines.append("No condition tables (utt2snr, utt2noise, utt2t60) in the data dir.")
    for cond in [c for c in CONDITION_TABLES if c in table]:
        t = table[cond]
        lines += [f"## By {COND_TITLES.get(cond, cond)} ({t['table']})", ""]
        head = ["condition", "n"] + [label(m) for m in metrics]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        for g in t["groups"]:
            cells = [cond_header(cond, g["value"], t["unit"]), str(g["n"])]
            for m in metrics:
                v = g["means"].get(m)
                cells.append("-" if v is None else f"{v:.{DECIMALS.get(m, 3)}f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"
