"""Stage 5: unsupervised speech enhancement with the clean-speech prior (UDiffSE / UDiffSE+, VAE-NMF).

    python -m avse.bin.enhance --config conf/enhance_udiffse.yaml --model exp/prior/model.pt \\
        --data_dir dump/raw/test --out_dir OUT [--device cpu|cuda] [--seed S] \\
        [--key_file K --job J] [--merge true]

(``--wav_scp SCP`` instead of ``--data_dir``.) Posterior sampling with the clean-speech
score model and an NMF noise model: ``method: udiffse`` (Nortier, Sadeghi, Serizel,
ICASSP 2024: EM over full reverse passes) or ``udiffse_plus`` (Ayilo et al., ICASSP
2025: one pass, NMF updated from the Tweedie estimate); ``method_conf`` goes to
``ENHANCERS.build`` as it is.

Per utterance (whole, any length): read at the model's rate, peak-normalise to
``max |x| = 1``, STFT + compression ``(F, T)``, pad the frames to a multiple of 64,
enhance with a generator seeded by ``stable_hash(seed, key)`` (the output does not
depend on the job split), crop, invert, restore the input scale, write
``OUT/wav/<key>.wav`` (32-bit float). An output with NaN stops the job with an error
naming the utterance. Passthrough (input written unchanged, with a warning):
utterances shorter than one STFT frame (``n_fft`` samples) and all-zero input.

VAE priors (``model: vae | rvae`` in training, :mod:`avse.nets.vae`): ``method: vae_mcem``
or ``vae_vem`` (:mod:`avse.enhance.vae_em`: EM with NMF noise on the linear STFT); a
method of the other kind of prior is refused with an error.

Restoration methods of :mod:`avse.enhance.restoration` (same prior): ``dps_informed``
(needs ``rir1.scp`` in ``--data_dir``), ``buddy`` (writes ``utt2t60_est``, the blind T60
estimate in s; ``--t60_estimate input`` writes instead, for any method, the blind estimate
of the input recording by :mod:`avse.dsp.t60_blind`, ``nan`` where it makes none),
``separate`` and ``joint`` (K sources). An enhancer declares its per-utterance inputs in
``needs`` (data-dir tables such as ``rir1.scp``, passed as ``rir1=np.ndarray``;
``frontend``; ``fs``) and ``needs_grad`` (DPS: the score function
then keeps the autograd graph). K-source output: ``OUT/wav/<key>_s<k>.wav`` listed in
``OUT/spk<k>.scp`` (k = 1..K); ``OUT/wav.scp`` lists source 1; ``OUT/sources.json``
(:mod:`avse.data.sources`) says how ``avse.bin.score`` pairs them with the data dir's
``spk<k>.scp``: by permutation-invariant scoring (``pit``; an audio-only prior: nothing
tells the talkers apart), or output k with talker k (``fixed``; an audio-visual prior,
below).

Rows per utterance: ``wav.scp``, ``utt2dur`` (and ``utt2spk`` when the input has it);
bookkeeping ``_seconds`` (processing time, s), ``_duration`` (audio, s), ``_nfe``
(network calls). The merge writes ``OUT/wav.scp`` ..., ``OUT/timing.json`` (``rtf`` =
sum of processing times / sum of durations, mean ``nfe``, ``seconds``, ``device``,
``method``) and ``OUT/config.yaml``.

Audio-visual models (trained with ``--lip_encoder``): AV-UDiffSE / AV-UDiffSE+ (Ayilo et
al., ICASSP 2025). The lips of each utterance (``--lip_scp``, default
``<data_dir>/lip.scp``; reliability from ``--lip_rel_source``, ``auto`` = the model's
training source; or ``--lip_rel_model``, a lip-reliability network run on the lips
as given) are encoded once and bound into the score function by a closure
(:mod:`avse.nets.lip_cond`), so the enhancers stay modality-agnostic.
``--lip_degrade missing50|occlude|shift3`` degrades the test lips (robustness rows).
A model on precomputed visual features (``lip_encoder: features``) reads
``<data_dir>/lip_feats.scp`` (or the ``lip_table`` it was trained with) instead.
An audio-only model refuses ``--lip_scp``/``--lip_degrade``; an audio-visual model
refuses to run without lips.

Separation with an audio-visual prior (audio-visual speech separation with diffusion
posterior sampling, :mod:`avse.nets.lip_cond`): a method sampling K sources
(``n_sources`` of the enhancer: ``separate``, ``joint``, ``cascade``) gets source k
conditioned on talker k's lips, ``lip.scp`` for talker 1 and ``lip<k>.scp`` (k >= 2,
written by stages 2-3 for the interferers) next to it; a missing ``lip<k>.scp`` is an
error naming it, unless ``--lip_sources target`` (talker 1's lips only; the other
sources run with the video marked missing). Output k is then talker k
(``sources.json``: ``fixed``).
"""
import argparse
import logging
import os
import sys
import time

import numpy as np
import torch

from avse.utils.cli import run_main
from avse.data.sources import ESTIMATES_FILE
from avse.data.uttjobs import Stage, collect_rows, merge_jobs, run_stage, stage_config
from avse.errors import InputError, StageError
from avse.enhance.base import aux_keyword
from avse.enhance.method_config import T60_ESTIMATES
from avse.io.audio import load_audio, save_audio
from avse.io.scp import read_table
from avse.utils.config import add_job_args, none_or, save_config, str2bool, yaml_value
from avse.utils.device import resolve_device
from avse.utils.fileio import write_json
from avse.utils.seeding import stable_hash

log = logging.getLogger("avse.enhance")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model.pt written by avse.bin.train (or a checkpoint)")
    p.add_argument("--data_dir", type=none_or(str), default=None, help="input data dir (wav.scp)")
    p.add_argument("--wav_scp", type=none_or(str), default=None, help="input wav.scp (instead of --data_dir)")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--method", default="udiffse",
                   help="enhancer (registry name): udiffse, udiffse_plus, dps_informed, buddy, separate, joint, "
                        "cascade (diffusion priors); vae_mcem, vae_vem (VAE priors)")
    p.add_argument("--method_conf", type=yaml_value, default={}, help="enhancer options (mapping)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--use_amp", type=str2bool, default=False, help="bf16 autocast of the network (CUDA and CPU)")
    p.add_argument("--lip_scp", type=none_or(str), default=None,
                   help="lips for an audio-visual model (default: <data_dir>/lip.scp; for a model on visual "
                        "features <data_dir>/lip_feats.scp, or the table it was trained on)")
    p.add_argument("--lip_rel_source", default="auto", choices=["auto", "conf", "rel", "none"],
                   help="lip reliability: the model's training source, lip_conf.scp, lip_rel.scp or 1")
    p.add_argument("--lip_rel_model", type=none_or(str), default=None,
                   help="lip-reliability network (avse.lips.reliability) scoring the lips as given to the model "
                        "(after --lip_degrade); replaces --lip_rel_source")
    p.add_argument("--lip_degrade", default="none",
                   help="test degradation of the lips: none, missing50, occlude, shift3 (missing<P>, shift<N>), "
                        "shuffle (another utterance's lips)")
    p.add_argument("--lip_guidance", type=float, default=1.0,
                   help="classifier-free guidance weight on the lips: s_u + w (s_c - s_u); 1 = plain "
                        "conditional score, > 1 twice the network calls")
    p.add_argument("--lip_sources", default="all", choices=["all", "target"],
                   help="a K-source method with an audio-visual prior: every source conditioned on its own "
                        "talker's lips (lip.scp, lip2.scp, ..) or only source 1 (the others with the video "
                        "marked missing)")
    p.add_argument("--lip_rel_guidance", type=str2bool, default=False,
                   help="scale the lip guidance weight per frame by the lip reliability: missing or unreliable "
                        "frames take the unconditional score (twice the network calls on utterances with such frames)")
    p.add_argument("--lip_fallback_model", type=none_or(str), default=None,
                   help="a score model of the same STFT, rate and SDE (e.g. the audio-only prior) giving the "
                        "unconditional score of the lip guidance, instead of the AV prior without video")
    p.add_argument("--lip_variance_temper", type=float, default=1.0,
                   help="weight of the lip part of a lip-variance prior's speech envelope (log sigma_d = "
                        "base + w delta(lips)); 1 = as trained, < 1 a less confident envelope")
    p.add_argument("--t60_estimate", default="method", choices=list(T60_ESTIMATES),
                   help="the T60 written to utt2t60_est: 'method' the method's own (buddy's room fit; "
                        "none for the others), 'input' the blind estimate of the input recording "
                        "(avse.dsp.t60_blind, any method)")
    add_job_args(p)
    return p


def load_aux_tables(enhancer, data_dir: str | None, method: str) -> dict:
    """``{kwarg: table}`` for the data-dir tables the enhancer declares in ``needs``
    (``rir1.scp`` -> ``rir1``); an error naming the file when one is missing."""
    tables = {}
    for need in getattr(enhancer, "needs", ()):
        if not need.endswith(".scp"):
            continue
        path = os.path.join(data_dir, need) if data_dir else None
        if path is None or not os.path.isfile(path):
            where = f"in {data_dir}" if data_dir else "(give --data_dir, not --wav_scp)"
            raise InputError(f"method {method} needs {need} {where}: the per-utterance input it "
                             f"uses (e.g. rir1.scp from the simulation stage of a reverberant set)")
        tables[aux_keyword(need)] = (path, read_table(path))
    return tables


def load_aux_value(path: str, fs: int, key: str) -> np.ndarray:
    """One auxiliary input: ``.npy`` array or audio (read at ``fs``)."""
    if path.endswith(".npy"):
        try:
            return np.load(path)
        except (OSError, ValueError) as e:
            raise InputError(f"utterance {key!r}: cannot read {path}: {e}") from e
    return load_audio(path, fs, utt=key)[0]


class Enhance:
    """Per-utterance function for :func:`avse.data.uttjobs.run_job`."""

    def __init__(self, args, wavs: dict, utt2spk: dict | None):
        from avse.enhance.base import ENHANCERS
        from avse.nets.lip_cond import LipConditioner, make_cond_score_fn
        from avse.nets.storage import load_model

        self.args, self.wavs, self.utt2spk = args, wavs, utt2spk
        self.device = resolve_device(args.device)
        self.m = load_model(args.model, self.device)
        self.enhancer = ENHANCERS.build(args.method, **(args.method_conf or {}))
        want = getattr(self.enhancer, "prior", "score")
        if want != self.m.kind:
            raise InputError(f"method {args.method} needs a {'VAE' if want == 'vae' else 'diffusion'} prior; "
                             f"{args.model} is a {'VAE' if self.m.kind == 'vae' else 'diffusion'} prior")
        if self.m.kind == "vae" and (args.lip_guidance != 1.0 or args.lip_rel_guidance):
            raise InputError("--lip_guidance / --lip_rel_guidance are classifier-free guidance of a diffusion prior; "
                             "a VAE prior has none")
        self.needs = tuple(getattr(self.enhancer, "needs", ()))
        self.grad = bool(getattr(self.enhancer, "needs_grad", False))
        self.aux_tables = load_aux_tables(self.enhancer, args.data_dir, args.method)
        self.score_fn = None if self.m.kind == "vae" else \
            make_cond_score_fn(self.m.model, self.device, args.use_amp, cond=None, grad=self.grad)
        tcfg = self.m.meta.get("train_config") or {}
        self.n_sources = int(getattr(self.enhancer, "n_sources", 1))
        self.lips = LipConditioner.for_model(
            self.m.model, args.data_dir, args.lip_scp, args.lip_rel_source, tcfg.get("lip_rel_source"),
            self.device, args.use_amp, args.lip_degrade, args.seed, args.model, args.lip_rel_model,
            args.lip_guidance, args.lip_variance_temper, train_lip_table=tcfg.get("lip_table"),
            n_sources=self.n_sources, lip_sources=args.lip_sources,
            rel_guidance=args.lip_rel_guidance, fallback=self._fallback(args))
        # K > 1 outputs: bound to the talkers by their lips, or in no particular order
        self.assignment = "fixed" if self.lips is not None and self.lips.n_sources > 1 else "pit"
        self.wav_dir = os.path.join(args.out_dir, "wav")

    def _fallback(self, args):
        """The ``--lip_fallback_model`` network, checked against the main model, or None."""
        if not args.lip_fallback_model:
            return None
        from avse.nets.lip_cond import check_fallback
        from avse.nets.storage import load_model

        return check_fallback(self.m, load_model(args.lip_fallback_model, self.device), args.lip_fallback_model)

    def aux(self, key: str) -> dict:
        """Per-utterance keyword inputs declared by the enhancer's ``needs``."""
        out = {}
        if "frontend" in self.needs:
            out["frontend"] = self.m.frontend
        if "fs" in self.needs:
            out["fs"] = self.m.fs
        for kw, (path, table) in self.aux_tables.items():
            if key not in table:
                raise InputError(f"{path}: no entry for utterance {key!r} (method {self.args.method})")
            out[kw] = load_aux_value(table[key], self.m.fs, key)
        return out

    def enhance(self, x: np.ndarray, key: str) -> tuple[np.ndarray, int]:
        """Enhance one waveform ``(N,)`` float32; returns ``(y, nfe)`` with ``y`` (N,) float32,
        or (K, N) for an enhancer with K > 1 output sources. An audio-visual prior gets this
        utterance's lips: bound into the score function, or as a VAE's conditioning."""
        from avse.enhance.chunked import enhance_waveform

        scale = float(np.max(np.abs(x)))
        gen = torch.Generator(device=self.device).manual_seed(stable_hash(self.args.seed, key))
        if self.m.kind == "vae":
            cond = None if self.lips is None else self.lips.conditioning(key)
            y, nfe = enhance_waveform(self.m, self.enhancer, x / scale, gen, cond=cond)
        else:
            score_fn = self.score_fn if self.lips is None else self.lips.score_fn(key, grad=self.grad)
            y, nfe = enhance_waveform(self.m, self.enhancer, x / scale, gen, score_fn=score_fn, **self.aux(key))
        return y * scale, nfe

    @staticmethod
    def t60(x: np.ndarray, fs: int) -> float | None:
        """Blind T60 (s) of the input ``x`` (N,) at ``fs`` Hz (:mod:`avse.dsp.t60_blind`);
        ``None`` (with a warning) when the recording is too short, ``nan`` without a free decay."""
        from avse.dsp.t60_blind import MIN_SECONDS, estimate_t60

        if len(x) < MIN_SECONDS * fs:
            log.warning("input of %.2f s: too short for a blind T60 estimate (%.1f s); written as nan",
                        len(x) / fs, MIN_SECONDS)
            return None
        return estimate_t60(x, fs)

    def __call__(self, key: str) -> dict:
        x, fs = load_audio(self.wavs[key], self.m.fs, utt=key, allow_silent=True)
        out = os.path.join(self.wav_dir, f"{key}.wav")
        t0 = time.perf_counter()
        passthrough = len(x) < self.m.frontend.n_fft or not np.any(x)
        if passthrough:
            why = "all-zero input" if len(x) >= self.m.frontend.n_fft else \
                f"shorter than one STFT frame ({len(x)} < {self.m.frontend.n_fft} samples)"
            log.warning("%s: %s; written unchanged", key, why)
            y, nfe = x, 0
        else:
            y, nfe = self.enhance(x, key)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            if not np.all(np.isfinite(y)):
                raise StageError(f"utterance {key!r}: the enhanced signal has NaN or infinite samples "
                                 f"(method {self.args.method}); check the model and method_conf")
        rows = {}
        k_src = self.n_sources
        if k_src > 1:  # sources: wav/<key>_s<k>.wav in spk<k>.scp; wav.scp lists source 1
            ys = y if y.ndim == 2 else np.stack([x] * k_src)
            for k in range(k_src):
                out_k = os.path.join(self.wav_dir, f"{key}_s{k + 1}.wav")
                save_audio(out_k, ys[k], fs, subtype="FLOAT")
                rows[f"spk{k + 1}.scp"] = out_k
            out = rows["spk1.scp"]
            rows["_sources"] = f"{k_src} {self.assignment}"
        else:
            save_audio(out, y, fs, subtype="FLOAT")
        if self.args.t60_estimate == "input":   # every row; nan where no estimate could be made
            t60 = self.t60(x, fs)
            rows["utt2t60_est"] = "nan" if t60 is None or not np.isfinite(t60) else f"{t60:.4f}"
        else:
            t60 = (getattr(self.enhancer, "last_stats", None) or {}).get("t60")
            if t60 is not None and not passthrough:
                rows["utt2t60_est"] = f"{float(t60):.4f}"
        rows.update({"wav.scp": out, "utt2dur": f"{len(x) / fs:.4f}", "_seconds": f"{time.perf_counter() - t0:.4f}",
                     "_duration": f"{len(x) / fs:.4f}", "_nfe": str(nfe), "_passthrough": str(int(passthrough))})
        if self.utt2spk is not None:
            rows["utt2spk"] = self.utt2spk[key]
        return rows


def input_tables(args) -> tuple[dict, dict | None]:
    """``(wav.scp table, utt2spk table or None)`` of the input."""
    if bool(args.data_dir) == bool(args.wav_scp):
        raise InputError("give exactly one of --data_dir and --wav_scp")
    if args.data_dir:
        if not os.path.isdir(args.data_dir):
            raise StageError(f"{args.data_dir}: input data dir not found; run stage 3 first")
        scp = os.path.join(args.data_dir, "wav.scp")
    else:
        scp = args.wav_scp
    if not os.path.isfile(scp):
        raise StageError(f"{scp}: not found; run stage 3 first")
    wavs = read_table(scp)
    if not wavs:
        raise InputError(f"{scp}: empty wav.scp, nothing to enhance")
    u2s = None
    if args.data_dir and os.path.isfile(os.path.join(args.data_dir, "utt2spk")):
        u2s = read_table(os.path.join(args.data_dir, "utt2spk"))
        u2s = u2s if set(u2s) >= set(wavs) else None
    return wavs, u2s


def finish(args, has_spk: bool) -> None:
    """Merge the jobs and write ``timing.json`` and ``config.yaml``."""
    rows, _ = collect_rows(args.out_dir)
    done = [r for r in rows.values() if r.get("_passthrough", "0") == "0"]
    seconds = sum(float(r["_seconds"]) for r in rows.values())
    duration = sum(float(r["_duration"]) for r in rows.values())
    timing = {"rtf": seconds / duration if duration > 0 else None,
              "nfe": float(np.mean([int(r["_nfe"]) for r in done])) if done else 0.0,
              "seconds": round(seconds, 4), "duration": round(duration, 4), "utterances": len(rows),
              "passthrough": len(rows) - len(done), "device": args.device, "method": args.method,
              "use_amp": bool(args.use_amp),
              "torch_threads": torch.get_num_threads()}
    save_config(args, args.out_dir)
    write_json(os.path.join(args.out_dir, "timing.json"), timing)
    sources = {r["_sources"] for r in rows.values() if "_sources" in r}
    if sources:   # K > 1 outputs: how they are paired with the talkers (avse.data.sources)
        n, assignment = sources.pop().split()
        write_json(os.path.join(args.out_dir, ESTIMATES_FILE),
                   {"n_sources": int(n), "assignment": assignment,
                    "lip_sources": args.lip_sources if assignment == "fixed" else None})
    merge_jobs(args.out_dir, validate=has_spk, info={"method": args.method, "rtf": timing["rtf"]})
    log.info("%s: %d utterances, RTF %.3f, mean NFE %.1f on %s", args.out_dir, len(rows),
             timing["rtf"] or 0.0, timing["nfe"], args.device)


def run(args) -> None:
    if not isinstance(args.method_conf or {}, dict):
        raise InputError(f"--method_conf must be a mapping, got {args.method_conf!r}")

    def setup() -> Stage:
        wavs, u2s = input_tables(args)
        return Stage(keys=list(wavs), work=lambda: Enhance(args, wavs, u2s),
                     merge=lambda: finish(args, u2s is not None))

    run_stage(args, args.out_dir, setup, stage_config(args, ignore=("device",)), desc=f"{args.method} job {args.job}")


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
