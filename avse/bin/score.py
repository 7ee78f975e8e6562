"""Stage 6: score estimates against references, per utterance and per condition.

    python -m avse.bin.score --ref_scp REF [--ref_scp REF2 ...] --inf_scp INF [--inf_scp INF2 ...] \\
        --out_dir DIR [--metrics si_sdr pesq_wb pesq_nb pesq_nb_raw estoi] [--nj N] \\
        [--data_dir DATA] [--mix_scp MIX] [--system NAME] [--test_set NAME] \\
        [--timing_json FILE] [--fs 16000] [--t60_bins 0 0.3 0.6 1.0]

Metrics (``avse.metrics``): ``si_sdr`` (dB), ``sdr`` (plain SNR, dB), ``pesq_wb``
(MOS-LQO, P.862.2), ``pesq_nb`` (MOS-LQO, P.862.1), ``pesq_nb_raw`` (raw P.862
narrow band), ``estoi``, ``stoi``; ``si_sdri`` (SI-SDR improvement over the input) is
added when ``--mix_scp`` is given.

Utterances: the keys of the (first) ``--inf_scp``. Every reference (and ``--mix_scp``,
other ``--inf_scp``) must hold them; a missing key is an error naming it. Extra
reference keys are ignored. Audio is read with ``avse.io.audio.load_audio`` at ``--fs``
(other rates are resampled); silent estimates are scored (their metrics are ``nan``).

Separation: with K > 1 ``--ref_scp``/``--inf_scp`` pairs, every metric is averaged over
the K sources, paired by ``--assignment``: ``pit`` chooses the permutation of the
estimates per utterance by mean SI-SDR (``DIR/perm`` lists, per utterance, the 1-based
index of the ``--inf_scp`` paired with reference 1, 2, ...); ``fixed`` scores estimate k
against reference k, no permutation (the outputs of an audio-visual prior with
per-source lips: output k is talker k's, and a swap counts as the error it is);
``auto`` (default) is what the estimates' ``sources.json`` says (written next to them
by ``avse.bin.enhance``, :mod:`avse.data.sources`), else ``pit``.

Automatic separation scoring (``--pit auto``, default): with one ``--ref_scp``
``<data_dir>/<name>1.scp`` (``spk1.scp``; ``dereverb1.scp`` for WHAMR!'s dry sources)
and a ``--data_dir`` holding ``<name>2.scp`` (a K-speaker set: ``<name>1.scp`` ..
``<name>K.scp``), the references become those K tables and the estimates
the ``spk1.scp`` .. ``spkK.scp`` next to the ``--inf_scp`` (the output convention of
``avse.bin.enhance`` for K-source methods; their number must be K). ``si_sdri`` is then
added with ``--data_dir``'s ``wav.scp`` as the mixture unless ``--mix_scp`` is given.
Systems with one output (no ``spk2.scp`` next to the estimate, or the data dir's own
``wav.scp``) are scored against reference 1 as given. ``--pit off`` scores the given
pairs (in the ``--assignment``).

Outputs in ``DIR``:

* ``<metric>``: ``<utt> <value>`` per line, sorted, 4 decimals (``nan`` if undefined);
* ``summary.json``: ``{metric: mean over finite values, "n_utts": N,
  "n_failed": {metric: number of nan}}`` (a mean with no finite value is ``null``);
* ``t60_rel_err`` (blind dereverberation: ``utt2t60_est`` next to the ``--inf_scp`` and
  ``utt2t60`` in ``--data_dir``): ``|T60_est - T60| / T60`` per utterance (the measured
  T60, last field), its median in ``summary.json``;
* ``meta.json``: ``system``, ``test_set``, ``date`` (UTC), the inputs, ``assignment``
  (``pit`` or ``fixed``; ``null`` for one source), and the scalar fields of
  ``--timing_json`` (e.g. ``rtf``, ``nfe``);
* ``conditions.json`` and ``conditions.md``: means per SNR (``utt2snr``), noise type
  (``utt2noise``) and T60 bin (``utt2t60``) of ``--data_dir``, with counts;
* ``by_snr.png``: mean SI-SDR per SNR (when ``utt2snr`` exists and SI-SDR is scored);
* ``config.yaml`` and the ``.done`` marker (written last), which holds a digest of the
  inputs: the options and the size and modification time of every table and audio file
  scored. A re-run whose digest matches skips the work (``--skip_done false``: score
  again), so a recipe's scoring stage only scores what changed.

``--system`` defaults to the name of the directory two levels above ``DIR`` when ``DIR``
is called ``score`` (the recipe layout ``<system>/<test_set>/score``), else to the name
of ``DIR``; ``--test_set`` to the name of the parent of ``DIR``.

Work is spread over ``--nj`` processes (``multiprocessing.Pool``, chunks of
utterances); results are collected in key order, so the output does not depend on
``--nj``.
"""
import argparse
import datetime
import json
import logging
import math
import os
import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np

from avse.data.sources import ASSIGNMENTS, estimates_assignment
from avse.errors import InputError
from avse.io.scp import c_sorted, read_table, write_table
from avse.metrics import DEFAULT_METRICS, METRICS, finite_mean
from avse.metrics.pit import MAX_SOURCES
from avse.scoring.conditions import (DEFAULT_T60_BINS, MISSING, check_bins, condition_table,
                                     conditions_markdown, group_keys)
from avse.scoring.engine import SI_SDRI, score_all, t60_errors
from avse.utils.cli import run_main
from avse.utils.config import save_config, str2bool
from avse.utils.fileio import (atomic_open, atomic_path, clear_done, digest, done_info, mark_done,
                               source_signature, write_json)

log = logging.getLogger("avse.score")

T60_ERR = "t60_rel_err"
META_RESERVED = {"system", "test_set", "date", "metrics", "n_utts", "n_sources", "assignment", "fs", "ref_scp",
                 "inf_scp", "mix_scp", "data_dir", "timing_json", "avse_version"}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref_scp", action="append", required=True,
                   help="reference scp; repeat for several sources")
    p.add_argument("--inf_scp", action="append", required=True,
                   help="estimate scp, one per --ref_scp; its keys are the utterances scored")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS),
                   help=f"metrics to compute; known: {', '.join(METRICS.names() + [SI_SDRI])}")
    p.add_argument("--nj", type=int, default=1, help="worker processes")
    p.add_argument("--data_dir", default=None, help="data dir with utt2snr/utt2noise/utt2t60 (optional)")
    p.add_argument("--mix_scp", default=None, help="unprocessed input, for si_sdri")
    p.add_argument("--system", default=None, help="system name for the report")
    p.add_argument("--test_set", default=None, help="test set name for the report")
    p.add_argument("--timing_json", default=None, help="JSON with timing fields (rtf, nfe, ...)")
    p.add_argument("--fs", type=int, default=16000, help="sample rate the audio is scored at")
    p.add_argument("--t60_bins", type=float, nargs="+", default=list(DEFAULT_T60_BINS),
                   help="T60 bin edges in seconds (last bin open-ended)")
    p.add_argument("--len_tol", type=float, default=0.02,
                   help="length difference (s) between reference and estimate tolerated without warning")
    p.add_argument("--pit", default="auto", choices=["auto", "off"],
                   help="auto: score all spk<k>.scp of a multi-speaker --data_dir against the estimates' "
                        "spk<k>.scp")
    p.add_argument("--assignment", default="auto", choices=["auto", *ASSIGNMENTS],
                   help="several sources: pit (best permutation per utterance), fixed (estimate k against "
                        "reference k) or auto (the estimates' sources.json, else pit)")
    p.add_argument("--skip_done", type=str2bool, default=True,
                   help="skip when --out_dir was finished on the same inputs and options (.done digest)")
    p.add_argument("--verbose", type=int, default=1)
    return p


def _spk_tables(d: str, prefix: str = "spk") -> List[str]:
    """``d/<prefix>1.scp``, ``d/<prefix>2.scp``, ... while they exist."""
    out, k = [], 1
    while os.path.isfile(os.path.join(d, f"{prefix}{k}.scp")):
        out.append(os.path.join(d, f"{prefix}{k}.scp"))
        k += 1
    return out


def expand_sources(args) -> None:
    """``--pit auto``: turn one spk1 reference of a K-speaker data dir into K pairs (module
    docstring). Changes ``args.ref_scp``, ``args.inf_scp`` and maybe ``args.mix_scp``."""
    name = os.path.basename(args.ref_scp[0]) if len(args.ref_scp) == 1 else ""
    if (getattr(args, "pit", "auto") != "auto" or not args.data_dir or len(args.inf_scp) != 1
            or not name.endswith("1.scp")):
        return
    if os.path.abspath(os.path.dirname(args.ref_scp[0])) != os.path.abspath(args.data_dir):
        return
    refs = _spk_tables(args.data_dir, name[:-len("1.scp")])
    if len(refs) < 2:
        return
    inf_dir = os.path.dirname(os.path.abspath(args.inf_scp[0]))
    if inf_dir == os.path.abspath(args.data_dir):
        return  # the data dir itself (the unprocessed row): its spk*.scp are references
    infs = _spk_tables(inf_dir)
    if len(infs) < 2:
        return  # a one-output system (target-speaker enhancement): scored against source 1
    if len(infs) != len(refs):
        raise InputError(f"{inf_dir}: {len(infs)} estimated sources (spk*.scp) but "
                         f"{args.data_dir} has {len(refs)} references ({os.path.basename(refs[0])} ..)")
    args.ref_scp, args.inf_scp = refs, infs
    if not args.mix_scp and os.path.isfile(os.path.join(args.data_dir, "wav.scp")):
        args.mix_scp = os.path.join(args.data_dir, "wav.scp")
    log.info("%d-speaker data dir, %d estimated sources", len(refs), len(infs))


def resolve_assignment(args) -> str | None:
    """``pit`` or ``fixed`` for several sources (``--assignment auto``: the ``sources.json``
    next to the first estimate, else ``pit``), ``None`` for one."""
    if len(args.inf_scp) < 2:
        return None
    if args.assignment != "auto":
        return args.assignment
    return estimates_assignment(os.path.dirname(os.path.abspath(args.inf_scp[0]))) or "pit"


# ------------------------------------------------------------------------ inputs
_NOT_INPUTS = ("nj", "verbose", "skip_done")  # options that do not change a score
_COND_TABLES = ("utt2snr", "utt2noise", "utt2t60")


def input_digest(args, ctx: dict) -> str:
    """Digest of what the scores depend on (``ctx``: :func:`build_context`'s): the options,
    the tables (scp, timing, condition and T60 tables, ``sources.json``) and every audio
    file scored, each by path, size and modification time."""
    tables = [*args.ref_scp, *args.inf_scp, args.mix_scp, args.timing_json]
    inf_dir = os.path.dirname(os.path.abspath(args.inf_scp[0]))
    tables += [os.path.join(inf_dir, n) for n in ("utt2t60_est", "sources.json")]
    if args.data_dir:
        tables += [os.path.join(args.data_dir, n) for n in _COND_TABLES]
    sigs = [source_signature(p) for p in tables if p]
    for t in [*ctx["refs"], *ctx["infs"], ctx["mix"] or {}]:
        sigs += [source_signature(v) for v in t.values()]
    opts = {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_INPUTS}
    return digest(json.dumps([opts, sigs], default=str))


def _check_keys(keys: Sequence[str], table: Dict[str, str], path: str, role: str) -> None:
    missing = [k for k in keys if k not in table]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"{path}: {role} has no entry for utterance {missing[0]!r}{more}")


def build_context(args) -> Tuple[dict, List[str]]:
    if len(args.ref_scp) != len(args.inf_scp):
        raise InputError(f"{len(args.ref_scp)} --ref_scp but {len(args.inf_scp)} --inf_scp; "
                         "give one reference per estimate")
    assignment = resolve_assignment(args)
    if len(args.inf_scp) > MAX_SOURCES and assignment == "pit":
        raise InputError(f"{len(args.inf_scp)} sources: permutation search supports at most {MAX_SOURCES}")
    if args.nj < 1:
        raise InputError(f"--nj must be >= 1, got {args.nj}")
    metrics = []
    for m in args.metrics:
        if m == SI_SDRI:
            if not args.mix_scp:
                raise InputError("metric si_sdri needs --mix_scp (the unprocessed input)")
            continue
        METRICS.get(m)
        if m not in metrics:
            metrics.append(m)
    infs = [read_table(p) for p in args.inf_scp]
    refs = [read_table(p) for p in args.ref_scp]
    keys = c_sorted(infs[0])
    if not keys:
        raise InputError(f"{args.inf_scp[0]}: no utterances")
    for t, p in zip(infs[1:], args.inf_scp[1:]):
        _check_keys(keys, t, p, "estimate scp")
    for t, p in zip(refs, args.ref_scp):
        _check_keys(keys, t, p, "reference scp")
    mix = None
    if args.mix_scp:
        mix = read_table(args.mix_scp)
        _check_keys(keys, mix, args.mix_scp, "mixture scp")
    ctx = {"refs": [{k: t[k] for k in keys} for t in refs],
           "infs": [{k: t[k] for k in keys} for t in infs],
           "mix": None if mix is None else {k: mix[k] for k in keys},
           "metrics": metrics, "fs": args.fs, "len_tol": args.len_tol, "verbose": args.verbose,
           "assignment": assignment}
    return ctx, keys


def default_names(out_dir: str) -> Tuple[str, str]:
    """(system, test_set) guessed from ``<system>/<test_set>/score``."""
    d = os.path.abspath(out_dir)
    parent = os.path.dirname(d)
    if os.path.basename(d) == "score":
        return os.path.basename(os.path.dirname(parent)) or "system", os.path.basename(parent) or "test"
    return os.path.basename(d) or "system", os.path.basename(parent) or "test"


def read_timing(path: str) -> Dict[str, object]:
    """Scalar top-level fields of a timing JSON (numbers, strings, booleans)."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: timing file not found")
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON: {e}") from e
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object")
    out = {}
    for k, v in obj.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            out[k if k not in META_RESERVED else f"timing_{k}"] = v
    return out


# ----------------------------------------------------------------------- outputs
def _fmt(v: float) -> str:
    return f"{v:.4f}"


def _json_num(v: float):
    return v if v is not None and math.isfinite(v) else None


def plot_by_snr(path: str, cond: dict, title: str) -> bool:
    """Mean SI-SDR (and SI-SDRi when present) per SNR; returns False if nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [g for g in cond["groups"] if g["value"] != MISSING and g["means"].get("si_sdr") is not None]
    if not rows:
        return False
    x = [float(g["value"]) for g in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(x, [g["means"]["si_sdr"] for g in rows], "o-", label="SI-SDR")
    if all(g["means"].get(SI_SDRI) is not None for g in rows) and any(SI_SDRI in g["means"] for g in rows):
        ax.plot(x, [g["means"][SI_SDRI] for g in rows], "s--", label="SI-SDRi")
    for xi, g in zip(x, rows):
        ax.annotate(f"n={g['n']}", (xi, g["means"]["si_sdr"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=7)
    ax.set_xlabel("input SNR (dB)")
    ax.set_ylabel("dB")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return True


def write_outputs(args, keys: Sequence[str], results, metrics: Sequence[str], system: str,
                  test_set: str) -> dict:
    out = args.out_dir
    values: Dict[str, Dict[str, float]] = {m: {} for m in metrics}
    perms = {}
    for key, vals, perm in results:
        for m in metrics:
            values[m][key] = vals[m]
        if perm is not None:
            perms[key] = " ".join(str(p + 1) for p in perm)
    for m in metrics:
        write_table(os.path.join(out, m), {k: _fmt(v) for k, v in values[m].items()})
    if perms:
        write_table(os.path.join(out, "perm"), perms)
    summary = {m: _json_num(finite_mean(values[m].values())) for m in metrics}
    t60 = t60_errors(args.inf_scp[0], args.data_dir, keys)
    if t60:
        write_table(os.path.join(out, T60_ERR), {k: _fmt(v) for k, v in t60.items()})
        summary[T60_ERR] = _json_num(float(np.median(list(t60.values()))))
    summary["n_utts"] = len(keys)
    summary["n_failed"] = {m: sum(1 for v in values[m].values() if not math.isfinite(v)) for m in metrics}
    write_json(os.path.join(out, "summary.json"), summary)
    for m, n in summary["n_failed"].items():
        if n:
            log.warning("%s: %d of %d utterances undefined (nan); left out of the mean", m, n, len(keys))

    cond = {}
    if args.data_dir:
        groups = group_keys(args.data_dir, keys, args.t60_bins)
        cond = condition_table(groups, values)
        for c in cond.values():
            for g in c["groups"]:
                g["means"] = {m: _json_num(v) for m, v in g["means"].items()}
    write_json(os.path.join(out, "conditions.json"), cond)
    with atomic_open(os.path.join(out, "conditions.md")) as f:
        f.write(conditions_markdown(cond, metrics, title=f"{system} on {test_set}: scores by condition"))
    png = os.path.join(out, "by_snr.png")
    if "snr" in cond and "si_sdr" in metrics:
        plot_by_snr(png, cond["snr"], f"{system} on {test_set}")
    return summary


def run(args) -> dict:
    """Score as configured by ``args`` (parsed options); returns the summary.

    Raises:
        AvseError: bad inputs (the message names the file and utterance).
    """
    args.t60_bins = check_bins(args.t60_bins)
    if args.data_dir and not os.path.isdir(args.data_dir):
        raise InputError(f"{args.data_dir}: data directory not found")
    timing = read_timing(args.timing_json) if args.timing_json else {}
    expand_sources(args)
    ctx, keys = build_context(args)
    inputs = input_digest(args, ctx)
    done = done_info(args.out_dir)
    summary_path = os.path.join(args.out_dir, "summary.json")
    if args.skip_done and done and done.get("inputs") == inputs and os.path.isfile(summary_path):
        log.info("%s: already scored on these inputs (.done); skipping (--skip_done false to redo)",
                 args.out_dir)
        with open(summary_path, encoding="utf-8") as f:
            return json.load(f)
    metrics = list(ctx["metrics"]) + ([SI_SDRI] if ctx["mix"] is not None else [])
    sys_default, set_default = default_names(args.out_dir)
    system = args.system or sys_default
    test_set = args.test_set or set_default
    os.makedirs(args.out_dir, exist_ok=True)
    clear_done(args.out_dir)
    save_config(args, args.out_dir)
    log.info("scoring %d utterances (%d source%s%s) of %s on %s: %s, nj=%d", len(keys),
             len(args.inf_scp), "s" if len(args.inf_scp) > 1 else "",
             f", {ctx['assignment']} assignment" if ctx["assignment"] else "", system, test_set,
             " ".join(metrics), args.nj)
    t0 = datetime.datetime.now(datetime.timezone.utc)
    results = score_all(ctx, keys, args.nj)
    summary = write_outputs(args, keys, results, metrics, system, test_set)
    from avse.version import __version__

    meta = {"system": system, "test_set": test_set,
            "date": t0.strftime("%Y-%m-%dT%H:%M:%SZ"), "metrics": metrics, "n_utts": len(keys),
            "n_sources": len(args.inf_scp), "assignment": ctx["assignment"], "fs": args.fs,
            "ref_scp": [os.path.abspath(p) for p in args.ref_scp],
            "inf_scp": [os.path.abspath(p) for p in args.inf_scp],
            "mix_scp": os.path.abspath(args.mix_scp) if args.mix_scp else None,
            "data_dir": os.path.abspath(args.data_dir) if args.data_dir else None,
            "timing_json": os.path.abspath(args.timing_json) if args.timing_json else None,
            "avse_version": __version__}
    meta.update(timing)
    write_json(os.path.join(args.out_dir, "meta.json"), meta)
    mark_done(args.out_dir, {"n_utts": len(keys), "inputs": inputs})
    log.info("%s", " ".join(f"{m}={summary[m]:.4f}" if summary[m] is not None else f"{m}=nan"
                           for m in metrics))
    return summary


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
