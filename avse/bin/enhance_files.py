"""Enhance your own recordings: audio files, a folder or a wav.scp, with a trained model.

    avse-enhance --model exp/prior/packed.tar.gz --input recordings/ --out_dir enhanced/ \\
        [--method udiffse_plus] [--method_conf.n_steps 15] [--video_dir videos/] \\
        [--chunk 10 --overlap 1] [--device cuda] [--progress false]

(``python -m avse.bin.enhance_files`` is the same command.)

Model (``--model``): a packed archive of :mod:`avse.bin.pack`, an experiment directory
(its ``model.pt``) or a ``model.pt`` (:func:`avse.nets.packed.open_model`).

Method: a packed model records its enhancement configs under names (``udiffse_plus``
for ``conf/enhance_udiffse_plus.yaml``) and a default. ``--method NAME`` takes the
recorded config of that name, or else the enhancer of that name
(:data:`avse.enhance.base.ENHANCERS`) with its default settings; without ``--method``
the packed default is used. ``--method_conf`` (and ``--config FILE`` with the keys of a
stage-5 config: ``method``, ``method_conf``, ``lip_*``) is laid over the recorded
settings (:func:`avse.enhance.method_config.merge_settings`). Methods with one output
and no per-utterance tables: ``udiffse``, ``udiffse_plus``, ``buddy``, ``vae_mcem``,
``vae_vem``, a ``cascade`` of them.

Input (``--input``): one audio file, a folder searched recursively, or a Kaldi
``wav.scp`` (:mod:`avse.io.recordings`). Outputs mirror the input's relative paths
under ``--out_dir`` as 32-bit float WAV files (``a/b.flac`` -> ``OUT/a/b.wav``), at the
input's sample rate and length. Audio is read at the model's rate (polyphase
resampling) and written back at the input's; several channels are averaged (with a
warning). Files longer than ``--chunk`` seconds are enhanced in chunks overlapping by
``--overlap`` seconds and cross-faded, with the noise estimate of the whole file
(:mod:`avse.enhance.chunked`, which states the memory bound: it grows with ``--chunk``,
not with the file). A file of one chunk at the model's rate gets what ``avse.bin.enhance``
writes for it (same seed, key and settings).

Audio-visual models: ``--video_dir`` holds a video per recording (same relative path or
same stem; ``.npy`` mouth crops, or ``.mp4``/``.avi``/... run through ``--lip_backend``,
:mod:`avse.lips.recording`). A recording without video is enhanced with the video marked
missing, with a warning. An audio-only model refuses ``--video_dir``. A method recorded
with ``lip_rel_guidance`` (reliability-weighted lip guidance, :mod:`avse.nets.lip_cond`),
``lip_fallback_model`` (the audio-only prior used where the video fails) and
``lip_rel_model`` (a lip-reliability network scoring the crops) uses them here too; a packed
model carries those files.

A bad recording (missing, unreadable, empty, NaN or infinite samples, unreadable
video) is reported with its file name and the others are still enhanced; the exit
status is 1 if any failed. ``OUT/config.yaml`` holds the resolved options (``method``
and ``method_conf`` as used), ``OUT/enhance_files.log`` the log and ``OUT/failed.tsv``
the failures (``<input>\\t<reason>``).
"""
import argparse
import logging
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from avse.errors import AvseError, InputError, StageError
from avse.io.recordings import duplicate_outputs, find_recordings
from avse.utils.cli import run_main
from avse.utils.config import none_or, save_config, str2bool, yaml_value
from avse.utils.device import resolve_device
from avse.utils.fileio import atomic_open
from avse.utils.seeding import stable_hash

log = logging.getLogger("avse.enhance_files")
LOG_NAME, FAILED_NAME = "enhance_files.log", "failed.tsv"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="packed model (.tar.gz), experiment dir or model.pt")
    p.add_argument("--input", required=True, help="an audio file, a folder (recursive) or a wav.scp")
    p.add_argument("--out_dir", required=True, help="outputs mirror the input's relative paths here")
    p.add_argument("--method", type=none_or(str), default=None,
                   help="a config recorded in the packed model (e.g. udiffse_plus) or an enhancer name; "
                        "default: the packed default")
    p.add_argument("--method_conf", type=yaml_value, default={}, help="enhancer options laid over the method's")
    p.add_argument("--lip_rel_source", type=none_or(str), default=None,
                   help="lip reliability: auto (the model's training source), conf (the lip backend's "
                        "confidence) or none (1); default: the method's, else auto")
    p.add_argument("--lip_degrade", type=none_or(str), default=None, help="only none here (a test option of stage 5)")
    p.add_argument("--lip_guidance", type=none_or(float), default=None,
                   help="classifier-free guidance weight on the lips (default: the method's, else 1)")
    p.add_argument("--lip_rel_guidance", type=none_or(str2bool), default=None,
                   help="scale the lip guidance per frame by the lip reliability (default: the method's, else false)")
    p.add_argument("--lip_variance_temper", type=none_or(float), default=None,
                   help="weight of the lip part of a lip-variance prior's speech envelope (default: the method's, "
                        "else 1: as trained)")
    p.add_argument("--lip_fallback_model", type=none_or(str), default=None,
                   help="score model of the unconditional score, e.g. the audio-only prior (default: the method's)")
    p.add_argument("--lip_rel_model", type=none_or(str), default=None,
                   help="lip-reliability network scoring the crops (default: the method's, else the lip backend's "
                        "confidence)")
    p.add_argument("--video_dir", type=none_or(str), default=None, help="videos or .npy mouth crops (AV models)")
    p.add_argument("--lip_backend", default="haar", help="lip extraction of a video: haar, landmarks (the face extra; else haar), box or none")
    p.add_argument("--lip_conf", type=yaml_value, default={}, help="lip backend options (mapping)")
    p.add_argument("--max_av_mismatch", type=float, default=0.5,
                   help="largest video/audio length difference (s) padded or cut; beyond it the file fails")
    p.add_argument("--chunk", type=float, default=10.0, help="chunk length (s) of long files")
    p.add_argument("--overlap", type=float, default=1.0, help="overlap (s) of consecutive chunks, cross-faded")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--use_amp", type=str2bool, default=False, help="bf16 autocast of the network (CUDA and CPU)")
    p.add_argument("--seed", type=int, default=0, help="random seed (draws per file: seed and its key)")
    p.add_argument("--progress", type=str2bool, default=True, help="progress bars over files and chunks")
    p.add_argument("--verbose", type=int, default=1, help="log level: 0 warnings, 1 info, 2 debug")
    return p


def resolve_method(args, bundle) -> dict:
    """The method settings to use (module docstring); sets ``args.method`` and friends to them."""
    from avse.enhance.method_config import SETTINGS_KEYS, merge_settings, resolve_settings
    from avse.nets.packed import config_name

    name = config_name(args.method) if args.method else bundle.default
    recorded = bundle.enhance.get(name) if name else None
    if recorded is None and args.method is None:
        raise InputError(f"{bundle.source}: records no default enhancement config; give --method "
                         f"(an enhancer, e.g. udiffse_plus) or --config conf/enhance_*.yaml")
    over = {k: getattr(args, k, None) for k in SETTINGS_KEYS if k != "method"}
    over["method_conf"] = args.method_conf or {}
    where = f"method {name!r} recorded in {bundle.source}" if recorded else "--method/--method_conf"
    try:
        settings = resolve_settings(merge_settings(recorded or {"method": args.method}, over), where)
    except InputError as e:
        known = f" (recorded: {sorted(bundle.enhance)})" if bundle.enhance else ""
        raise InputError(f"{e}{known}") from e
    for k in SETTINGS_KEYS:
        setattr(args, k, settings.get(k))
    return settings


class Session:
    """The model, method and lip settings of one run; ``__call__(recording)`` enhances one."""

    def __init__(self, args):
        from avse.enhance import ENHANCERS
        from avse.enhance.chunked import ChunkedEnhancer, chunk_samples
        from avse.nets.lip_cond import make_cond_score_fn, set_variance_temper
        from avse.nets.packed import open_model

        self.args, self.device = args, resolve_device(args.device)
        self.bundle = open_model(args.model, self.device)
        self.m = m = self.bundle.model
        settings = resolve_method(args, self.bundle)
        self.enhancer = ENHANCERS.build(settings["method"], **settings["method_conf"])
        self._check_method(settings)
        self.av = bool(getattr(m.model, "audio_visual", False))
        temper = settings.get("lip_variance_temper")   # 0 is a valid weight: only None means "as trained"
        self.variance_temper = 1.0 if temper is None else float(temper)
        self._check_lips(settings)
        self.grad = bool(getattr(self.enhancer, "needs_grad", False))
        self.guidance = float(settings.get("lip_guidance", 1.0))
        self.rel_guidance = bool(settings.get("lip_rel_guidance", False))
        self.fallback, self.rel_model = self._lip_models(settings)
        set_variance_temper(m.model, self.variance_temper)
        self.score_fn = None if m.kind == "vae" else make_cond_score_fn(m.model, self.device, args.use_amp,
                                                                        grad=self.grad)
        needs = getattr(self.enhancer, "needs", ())
        self.aux = {k: v for k, v in (("frontend", m.frontend), ("fs", m.fs)) if k in needs}
        chunk, overlap = chunk_samples(m.fs, m.frontend, args.chunk, args.overlap, video=self.av)
        self.chunker = ChunkedEnhancer(m.frontend, m.fs, chunk, overlap, getattr(self.enhancer, "noise_model", None))
        log.info("model %s (%s prior%s, %d Hz), method %s, chunks of %.2f s overlapping by %.2f s%s",
                 args.model, m.kind, ", audio-visual" if self.av else "", m.fs, settings["method"],
                 chunk / m.fs, overlap / m.fs,
                 "; noise PSD of the whole file" if self.chunker.noise_model is not None else "")

    def _check_method(self, settings: dict) -> None:
        e, method = self.enhancer, settings["method"]
        want = getattr(e, "prior", "score")
        if want != self.m.kind:
            raise InputError(f"method {method} needs a {want} prior; {self.args.model} is a {self.m.kind} prior")
        tables = [n for n in getattr(e, "needs", ()) if n.endswith(".scp")]
        if tables or int(getattr(e, "n_sources", 1)) != 1:
            raise InputError(f"method {method} needs per-utterance tables {tables} or writes "
                             f"{getattr(e, 'n_sources', 1)} sources; enhancing files takes methods with one "
                             "output and no tables (run avse.bin.enhance on a data dir for the others)")

    def _check_lips(self, settings: dict) -> None:
        a = self.args
        if (settings.get("lip_degrade") or "none") != "none":
            raise InputError(f"lip_degrade {settings['lip_degrade']!r} is a test degradation of stage 5; "
                             "use lip_degrade: none here")
        if not self.av:
            lip_opts = [k for k in ("lip_rel_guidance", "lip_fallback_model", "lip_rel_model") if settings.get(k)]
            lip_opts += ["lip_variance_temper"] if self.variance_temper != 1.0 else []
            if a.video_dir or float(settings.get("lip_guidance", 1.0)) != 1.0 or lip_opts:
                raise InputError(f"{a.model}: an audio-only model takes no video; drop --video_dir / --lip_guidance"
                                 f"{''.join(' / --' + k for k in lip_opts)}")
            return
        if self.m.kind == "vae" and (float(settings.get("lip_guidance", 1.0)) != 1.0 or settings.get("lip_rel_guidance")
                                     or settings.get("lip_fallback_model")):
            raise InputError("--lip_guidance / --lip_rel_guidance / --lip_fallback_model are classifier-free guidance "
                             "of a diffusion prior; a VAE prior has none")
        from avse.nets.lip_cond import visual_input

        if visual_input(self.m.model) != "crops":
            raise InputError(f"{a.model} reads precomputed visual features (lip_encoder features), which "
                             "enhancing files cannot compute from a video; run avse.bin.enhance on a data dir "
                             "with lip_feats.scp (--lip_scp)")
        src = settings.get("lip_rel_source") or "auto"
        if src == "auto":
            src = (self.m.meta.get("train_config") or {}).get("lip_rel_source") or "conf"
            if src == "rel":
                log.warning("the model was trained with lip_rel.scp reliabilities; using the lip backend's "
                            "confidence instead (no lip-reliability network here)")
                src = "conf"
        if src not in ("conf", "none"):
            raise InputError(f"lip_rel_source {src!r}: enhancing files takes auto, conf or none")
        self.rel_source = src
        if a.video_dir and not os.path.isdir(a.video_dir):
            raise InputError(f"{a.video_dir}: video folder not found")

    def _lip_models(self, settings: dict):
        """``(fallback network | None, lip-reliability network | None)`` named by the settings
        (archive members of a packed model, else paths)."""
        from avse.lips.reliability import load_lip_rel
        from avse.nets.lip_cond import check_fallback
        from avse.nets.storage import load_model

        fb = rel = None
        if self.av and settings.get("lip_fallback_model"):
            name = settings["lip_fallback_model"]
            fb = check_fallback(self.m, self.bundle.load_file(name, lambda p: load_model(p, self.device)), name)
        if self.av and settings.get("lip_rel_model"):
            rel = self.bundle.load_file(settings["lip_rel_model"], lambda p: load_lip_rel(p, device=str(self.device)))
        return fb, rel

    def lips(self, rec, reader):
        """The recording's :class:`~avse.lips.recording.RecordingLips`, or None (audio-only model)."""
        from avse.lips.recording import find_video, recording_lips

        if not self.av:
            return None
        n = -(-reader.frames * 25 // reader.fs_in)   # ceil(duration * 25 fps)
        video = find_video(self.args.video_dir, rec.key) if self.args.video_dir else None
        if video is None:
            log.warning("%s: no video%s; enhancing with the video marked missing", rec.path,
                        f" in {self.args.video_dir}" if self.args.video_dir else " (--video_dir)")
        return recording_lips(video, n, self.args.lip_backend, self.args.lip_conf, self.args.max_av_mismatch,
                              self.rel_source, label=rec.path)

    def chunk_fn(self, rec, lips):
        """``fn(x, start, index, noise_psd) -> y`` of :class:`~avse.enhance.chunked.ChunkedEnhancer`."""
        from avse.enhance.chunked import enhance_waveform
        from avse.nets.lip_cond import encode_lips, make_cond_score_fn

        m, fs = self.m, self.m.fs

        def fn(x, start, i, noise_psd):
            seed = stable_hash(self.args.seed, rec.key) if i == 0 else stable_hash(self.args.seed, rec.key, i)
            gen = torch.Generator(device=self.device).manual_seed(seed)
            cond = None
            if lips is not None:
                crops, mask, rel = lips.window(start * 25 // fs, -(-(start + len(x)) * 25 // fs))
                if self.rel_model is not None and len(crops) and mask.any():
                    rel = np.where(np.asarray(rel) > 0, self.rel_model(np.ascontiguousarray(crops)), 0.0)
                cond = encode_lips(m.model, crops, mask, np.asarray(rel, np.float32), self.device)
            if m.kind == "vae":
                y, _ = enhance_waveform(m, self.enhancer, x, gen, cond=cond)
            else:
                score_fn = self.score_fn if cond is None else make_cond_score_fn(
                    m.model, self.device, self.args.use_amp, cond, self.grad, self.guidance, self.rel_guidance,
                    self.fallback)
                aux = dict(self.aux, noise_psd=noise_psd) if noise_psd is not None else self.aux
                y, _ = enhance_waveform(m, self.enhancer, x, gen, score_fn=score_fn, **aux)
            if not np.all(np.isfinite(y)):
                raise StageError(f"{rec.path}: the enhanced signal has NaN or infinite samples (chunk {i}, "
                                 f"method {self.args.method}); check the model and method_conf")
            return y

        return fn

    def __call__(self, rec, bar=None) -> dict:
        from avse.io.stream import AudioReader

        reader = AudioReader(rec.path, self.m.fs)
        if reader.downmixed:
            log.warning("%s: %d channels mixed down to mono", rec.path, reader.channels)
        lips = self.lips(rec, reader)
        t0 = time.perf_counter()
        stats = self.chunker(reader, os.path.join(self.args.out_dir, rec.out), self.chunk_fn(rec, lips), bar)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        stats["wall"] = time.perf_counter() - t0
        if stats["passthrough"]:
            log.warning("%s: %s; written unchanged", rec.path, stats["passthrough"])
        return stats


def run(args) -> int:
    """Enhance every recording; the log also goes to ``OUT/enhance_files.log``."""
    os.makedirs(args.out_dir, exist_ok=True)
    handler = logging.FileHandler(os.path.join(args.out_dir, LOG_NAME), mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    logging.getLogger().addHandler(handler)
    try:
        return enhance_all(args)
    except AvseError as e:   # logged here, so that the log file has it too
        log.error("%s", e)
        return 1
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def enhance_all(args) -> int:
    """The body of :func:`run`; returns the exit status (1 if any recording failed)."""
    recs = find_recordings(args.input, args.out_dir)
    session = Session(args)
    save_config(args, args.out_dir)
    dup = duplicate_outputs(recs)
    failed = [(r.path, f"{r.path}: its output {r.out} would be that of {d.path} too") for r, d in dup.items()]
    for _, msg in failed:
        log.error("%s; left out", msg)
    seconds = wall = 0.0
    todo = [r for r in recs if r not in dup]
    with tqdm(todo, desc="files", unit="file", disable=not args.progress) as files, \
            tqdm(desc="chunks", unit="chunk", leave=False, position=1, disable=not args.progress) as chunks:
        for rec in files:
            try:
                st = session(rec, chunks)
            except AvseError as e:
                msg = str(e) if rec.path in str(e) else f"{rec.path}: {e}"
                log.error("%s", msg)
                failed.append((rec.path, msg))
                continue
            seconds, wall = seconds + st["seconds"], wall + st["wall"]
            log.info("%s -> %s: %.2f s in %d chunk%s, %.2f s (RTF %.3f)", rec.path, rec.out, st["seconds"],
                     st["chunks"], "s" if st["chunks"] > 1 else "", st["wall"], st["wall"] / max(st["seconds"], 1e-9))
    path = os.path.join(args.out_dir, FAILED_NAME)
    if failed:
        with atomic_open(path) as f:
            f.writelines(f"{p}\t{' '.join(msg.split())}\n" for p, msg in failed)
    elif os.path.isfile(path):
        os.unlink(path)
    log.info("enhanced %d of %d files into %s (%.1f s of audio, RTF %.3f)%s", len(recs) - len(failed), len(recs),
             args.out_dir, seconds, wall / seconds if seconds else 0.0,
             f"; {len(failed)} failed, listed in {path}" if failed else "")
    return 1 if failed else 0


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


def cli() -> None:
    """Console script ``avse-enhance``."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
