"""``RESULTS.md`` from the score directories of an experiment.

The entries are the score directories found by :mod:`avse.scoring.entries` (one per
system and test set, written by ``avse.bin.score``): their ``summary.json`` gives the
means and their ``conditions.json`` the per-condition means. Nothing is pre-filled:
every number of the report comes from those files.

The report has:

* a header with the environment: date (UTC), git commit and whether the work tree
  has uncommitted changes to tracked files, Python and package versions, platform,
  CPU count, GPU (when torch sees one);
* per test set, a table with one row per system (``noisy`` first, then in byte
  order) and one column per metric present (SI-SDR, PESQ-WB, PESQ-NB MOS-LQO, raw
  PESQ-NB, ESTOI, ...) plus RTF and NFE when a system's ``meta.json`` has them;
* per test set and condition (SNR, noise type, T60 bin), a table of mean SI-SDR with
  one row per system and one column per condition value, and the other metrics'
  tables in a collapsible ``<details>`` block.
"""
import datetime
import importlib.metadata
import os
import platform
import subprocess
from typing import List, Optional, Sequence

from avse.errors import StageError
from avse.metrics import label
from avse.scoring.conditions import COND_TITLES, CONDITION_TABLES, MISSING, cond_header
from avse.scoring.entries import (METRIC_ORDER, find_score_dirs, fmt_metric, group_by_test_set,
                                  load_entries, load_entry, summary_table)
from avse.utils.fileio import atomic_open

PACKAGES = ("torch", "numpy", "scipy", "pesq", "pystoi", "pyroomacoustics")


# -------------------------------------------------------------------- environment
def _git(args: Sequence[str], cwd: str) -> Optional[str]:
    try:
        p = subprocess.run(["git", "--no-optional-locks", *args], cwd=cwd, capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def git_state(exp_dir: str) -> dict:
    """Commit, dirtiness (tracked files) and untracked count of the repo holding ``exp_dir``, else of
    the current directory, else of the installed ``avse`` source tree."""
    import avse

    for d in (exp_dir, os.getcwd(), os.path.dirname(os.path.dirname(os.path.abspath(avse.__file__)))):
        if not os.path.isdir(d):
            continue
        commit = _git(["rev-parse", "HEAD"], d)
        if commit:
            top = _git(["rev-parse", "--show-toplevel"], d)
            status = _git(["status", "--porcelain"], d)
            lines = [] if status is None else [ln for ln in status.splitlines() if ln.strip()]
            untracked = sum(1 for ln in lines if ln.startswith("??"))
            return {"commit": commit, "dirty": None if status is None else len(lines) > untracked,
                    "untracked": None if status is None else untracked, "repo": top}
    return {"commit": None, "dirty": None, "untracked": None, "repo": None}


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _gpu_possible() -> bool:
    """Cheap check before importing torch: a GPU device node or nvidia-smi exists."""
    import glob
    import shutil

    return bool(glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/kfd") or shutil.which("nvidia-smi"))


def gpu_name() -> Optional[str]:
    """GPU names as torch sees them (``torch.cuda``); None without torch or GPU.

    torch is imported only when it is already loaded or a GPU device node exists.
    """
    import importlib.util
    import sys

    if importlib.util.find_spec("torch") is None:
        return None
    if "torch" not in sys.modules and not _gpu_possible():
        return None
    try:
        import torch

        if torch.cuda.is_available():
            return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001 - a broken CUDA set-up only loses this header line
        return None
    return None


def environment(exp_dir: str) -> dict:
    env = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
           "python": platform.python_version(), "platform": platform.platform(),
           "cpus": os.cpu_count(), "gpu": gpu_name(), "avse": package_version("avse"),
           "packages": {p: package_version(p) for p in PACKAGES}}
    env.update(git_state(exp_dir))
    return env


# ---------------------------------------------------------------------- rendering
def _table(head: List[str], rows: List[List[str]], align_left: int = 1) -> List[str]:
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join([":---"] * align_left + ["---:"] * (len(head) - align_left)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def main_table(entries: List[dict]) -> List[str]:
    head, rows, notes = summary_table(entries)
    lines = _table(head, rows)
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return lines


def _cond_values(entries: List[dict], cond: str) -> List[str]:
    values: List[str] = []
    for e in entries:
        for g in e["conditions"].get(cond, {}).get("groups", []):
            if g["value"] not in values:
                values.append(g["value"])
    if cond == "snr":
        def key(v):
            try:
                return (0, float(v))
            except ValueError:
                return (1, 0.0)
        values.sort(key=key)
    elif cond == "noise":
        values.sort(key=lambda v: (v == MISSING, v.encode("utf-8")))
    else:
        values.sort(key=lambda v: v == MISSING)  # stable: bin order kept, n/a last
    return values


def condition_tables(entries: List[dict], cond: str) -> List[str]:
    values = _cond_values(entries, cond)
    if not values:
        return []
    unit = next((e["conditions"][cond].get("unit", "") for e in entries if cond in e["conditions"]),
                CONDITION_TABLES.get(cond, ("", ""))[1])
    groups = {e["rel"]: {g["value"]: g for g in e["conditions"].get(cond, {}).get("groups", [])}
              for e in entries}
    metrics = []
    for e in entries:
        for g in e["conditions"].get(cond, {}).get("groups", []):
            metrics += [m for m in g.get("means", {}) if m not in metrics]
    metrics = [m for m in METRIC_ORDER if m in metrics] + sorted(set(metrics) - set(METRIC_ORDER))
    if not metrics:
        return []
    head = ["system"]
    for v in values:
        ns = {groups[e["rel"]][v]["n"] for e in entries if v in groups[e["rel"]]}
        h = cond_header(cond, v, unit)
        head.append(f"{h} (n={ns.pop()})" if len(ns) == 1 else h)

    def table(metric: str) -> List[str]:
        rows = []
        for e in entries:
            g = groups[e["rel"]]
            rows.append([e["name"]] + [fmt_metric(g[v]["means"].get(metric), metric) if v in g else "-"
                                       for v in values])
        return _table(head, rows)

    main = "si_sdr" if "si_sdr" in metrics else metrics[0]
    title = COND_TITLES.get(cond, cond)
    table_name = CONDITION_TABLES.get(cond, (cond,))[0]
    lines = [f"#### {label(main)} by {title} (`{table_name}`)", ""] + table(main)
    others = [m for m in metrics if m != main]
    if others:
        lines += ["", f"<details><summary>Other metrics by {title}</summary>", ""]
        for m in others:
            lines += [f"**{label(m)}**", ""] + table(m) + [""]
        lines += ["</details>"]
    return lines + [""]


def render(entries: List[dict], env: dict, title: str = "Results", recipe: Optional[str] = None,
           exp_dir: str = "") -> str:
    lines = [f"# {title}", ""]
    lines += ["<!-- Generated by python -m avse.bin.make_results from the score directories; "
              "do not edit by hand. -->", ""]
    lines += ["## Environment", ""]
    if recipe:
        lines.append(f"- recipe: `{recipe}`")
    if exp_dir:
        lines.append(f"- experiment dir: `{exp_dir}`")
    lines.append(f"- date: {env['date']}")
    if env.get("commit"):
        dirty = {True: "; tree dirty: uncommitted changes to tracked files",
                 False: "; tree clean: no changes to tracked files", None: ""}[env.get("dirty")]
        if env.get("untracked"):
            dirty += f", {env['untracked']} untracked paths"
        lines.append(f"- git commit: `{env['commit']}`{dirty}")
    else:
        lines.append("- git commit: unknown (not in a git repository)")
    lines.append(f"- python: {env['python']}; avse {env.get('avse', '?')}; "
                 + ", ".join(f"{p} {v}" for p, v in env["packages"].items()))
    lines.append(f"- platform: {env['platform']}; CPUs: {env['cpus']}; GPU: {env.get('gpu') or 'none'}")
    lines += ["", "Metrics: SI-SDR in dB (zero-mean, scale-invariant); PESQ-WB = P.862.2 MOS-LQO; "
              "PESQ-NB (MOS-LQO) = P.862 with the P.862.1 mapping; PESQ-NB raw = raw P.862 "
              "narrow-band score recovered through the inverse P.862.1 mapping (the \"PESQ\" of "
              "pypesq and of many papers); ESTOI = extended STOI. Means over the utterances whose "
              "value is defined; RTF = processing time / audio duration; NFE = network "
              "evaluations per utterance.", ""]
    by_set = group_by_test_set(entries)
    for ts, es in by_set.items():
        lines += [f"## Test set `{ts}`", ""]
        lines += main_table(es) + [""]
        conds = [c for c in CONDITION_TABLES if any(c in e["conditions"] for e in es)]
        conds += sorted({c for e in es for c in e["conditions"]} - set(conds))
        if conds:
            lines += ["### By condition", ""]
            for c in conds:
                lines += condition_tables(es, c)
        lines += ["<details><summary>Score directories</summary>", ""]
        for e in es:
            lines.append(f"- {e['name']}: `{e['rel']}` (scored {e['meta'].get('date', '?')})")
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def make_results(exp_dir: str, out: str, title: str = "Results", recipe: Optional[str] = None) -> dict:
    """Build ``out`` from the score dirs under ``exp_dir``; returns ``{test_set: [system names]}``."""
    entries = load_entries(exp_dir)
    if not entries:
        raise StageError(f"{exp_dir}: no score/meta.json found; run the scoring stage first")
    text = render(entries, environment(exp_dir), title=title, recipe=recipe, exp_dir=exp_dir)
    with atomic_open(out) as f:
        f.write(text)
    return {ts: [e["name"] for e in es] for ts, es in group_by_test_set(entries).items()}


__all__ = ["find_score_dirs", "load_entry", "group_by_test_set", "environment", "render",
           "make_results"]
