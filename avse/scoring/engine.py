"""The scoring engine of stage 6: metrics of one utterance against its reference(s),
over many utterances in parallel, and the T60 error of blind dereverberation.

The context ``ctx`` of :func:`score_utt` / :func:`score_all` is a plain dict:
``refs`` and ``infs`` (lists of ``{key: audio path}``, one per source), ``mix``
(``{key: path}`` or None: then no SI-SDR improvement), ``metrics`` (names of
:data:`avse.metrics.METRICS`), ``fs`` (Hz; other rates are resampled), ``len_tol``
(s), ``verbose``, ``assignment`` (K > 1 sources: ``pit`` or ``fixed``). With K > 1
sources the estimates are paired with the references by the permutation of best mean
SI-SDR per utterance (``pit``, :mod:`avse.metrics.pit`) or in their order (``fixed``:
estimate k with reference k), and every metric is averaged over the K pairs. The command with its inputs, outputs and options is :mod:`avse.bin.score`.
"""
import logging
import math
import multiprocessing
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from avse.errors import InputError
from avse.io.audio import load_audio
from avse.io.scp import read_table
from avse.metrics import compute_metrics, preload
from avse.metrics.pit import best_permutation, si_sdr_matrix
from avse.metrics.sisdr import si_sdr
from avse.utils.log import setup_logging

log = logging.getLogger("avse.score")

SI_SDRI = "si_sdri"


def t60_errors(inf_scp: str, data_dir: Optional[str], keys: Sequence[str]) -> Dict[str, float]:
    """``|T60_est - T60| / T60`` per utterance from ``utt2t60_est`` next to the estimates
    (blind dereverberation) and ``<data_dir>/utt2t60`` (its last field: the measured T60);
    empty when either is missing. An estimate ``nan`` (none made: too short a recording,
    no free decay) is left out, with a warning giving the count."""
    est_p = os.path.join(os.path.dirname(os.path.abspath(inf_scp)), "utt2t60_est")
    if not data_dir or not os.path.isfile(est_p) or not os.path.isfile(os.path.join(data_dir, "utt2t60")):
        return {}
    est, ref = read_table(est_p), read_table(os.path.join(data_dir, "utt2t60"))
    out, missing = {}, 0
    for k in keys:
        if k in est and k in ref:
            try:
                e, r = float(est[k].split()[-1]), float(ref[k].split()[-1])
            except ValueError as err:
                raise InputError(f"utterance {k!r}: bad T60 value in {est_p} or utt2t60: {err}") from err
            if not math.isfinite(e):
                missing += 1
            elif r > 0:
                out[k] = abs(e - r) / r
    if missing:
        log.warning("%s: no T60 estimate (nan) for %d of %d utterances; left out of t60_rel_err",
                    est_p, missing, len(keys))
    return out


# ------------------------------------------------------------------- per-utterance work
_CTX: Optional[dict] = None


def _init_worker(ctx: dict) -> None:
    global _CTX
    _CTX = ctx
    setup_logging(ctx.get("verbose", 1))


def _load(path: str, fs: int, key: str, silent_ok: bool) -> np.ndarray:
    x, _ = load_audio(path, fs, utt=key, resample_to_fs=True, allow_silent=silent_ok)
    return x


def score_utt(key: str, ctx: Optional[dict] = None) -> Tuple[str, Dict[str, float], Optional[Tuple[int, ...]]]:
    """Score one utterance: ``(key, {metric: value}, perm or None)`` (``None``: one source or
    the fixed assignment)."""
    ctx = ctx or _CTX
    fs, metrics, tol = ctx["fs"], ctx["metrics"], ctx["len_tol"]
    refs = [_load(t[key], fs, key, False) for t in ctx["refs"]]
    ests = [_load(t[key], fs, key, True) for t in ctx["infs"]]
    mix = _load(ctx["mix"][key], fs, key, False) if ctx["mix"] is not None else None
    k = len(refs)
    perm: Optional[Tuple[int, ...]] = None
    if k == 1:
        pairs = [(refs[0], ests[0])]
    else:
        n = min(x.size for x in refs + ests)
        if max(x.size for x in refs + ests) - n > round(tol * fs):
            log.warning("%s: source lengths differ (%s samples); all cut to %d", key,
                        ", ".join(str(x.size) for x in refs + ests), n)
        refs = [x[:n] for x in refs]
        ests = [x[:n] for x in ests]
        if ctx.get("assignment", "pit") == "pit":
            perm, _ = best_permutation(si_sdr_matrix(np.stack(refs), np.stack(ests)))
        pairs = [(refs[i], ests[i if perm is None else perm[i]]) for i in range(k)]
    per_src: List[Dict[str, float]] = []
    for i, (r, e) in enumerate(pairs):
        name = key if k == 1 else f"{key} (source {i + 1})"
        vals = compute_metrics(r, e, fs, metrics, name=name, tol_s=tol)
        if mix is not None:
            base = vals["si_sdr"] if "si_sdr" in vals else si_sdr(r, e, fs)
            vals[SI_SDRI] = base - si_sdr(r, mix, fs)
        per_src.append(vals)
    out = {m: float(np.mean([v[m] for v in per_src])) for m in per_src[0]}
    return key, out, perm


def _score_star(key: str):
    return score_utt(key)


def score_all(ctx: dict, keys: Sequence[str], nj: int = 1):
    """Score ``keys`` (in order) over ``nj`` processes; returns the list of results in order."""
    preload(ctx["metrics"])
    if nj <= 1 or len(keys) <= 1:
        return [score_utt(k, ctx) for k in keys]
    nj = min(nj, len(keys))
    chunk = max(1, len(keys) // (nj * 4))
    with multiprocessing.get_context().Pool(nj, initializer=_init_worker, initargs=(ctx,)) as pool:
        return list(pool.imap(_score_star, keys, chunksize=chunk))
