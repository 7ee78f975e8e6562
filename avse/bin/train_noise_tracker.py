"""Train the noise tracker of ``noise: tracker`` (a learned, optionally scene-conditioned
noise-PSD estimator; :mod:`avse.nets.noise_tracker`, :mod:`avse.train.noise_tracker`)::

    python -m avse.bin.train_noise_tracker --speech_dir data/train --noise_dir data/noise_train \\
        --out_dir exp/noise_tracker [--embed_model exp/noise_embed/model.pt [--embed_modality text]] \\
        [--steps 3000] [--snr "[-7, 12]"] [--reverb_prob 0.5] [--noise_aug 0.5] [--seed 0] [--num_threads 2]

Mixtures of the clean training speech and the training noise recordings (``wav.scp`` +
``utt2noise``) are drawn on the fly. Without ``--embed_model`` the tracker is blind; with
it, each mixture is conditioned on a noise embedding of a description of its type
(``--embed_modality``: text by default, so that pictures and noise clips at test time are
cross-modal), dropped at ``--drop_prob`` so that the same network also runs without one.

Writes ``OUT/model.pt`` (:func:`avse.nets.noise_tracker.save_tracker`), ``OUT/train_log.csv``,
``OUT/loss.png`` and the resolved ``OUT/config.yaml``.
"""
import argparse
import logging
import os
import sys

import numpy as np
import torch

from avse.corpus.synthetic.noise_text import describe
from avse.data.datadir import DataDir, spread_keys
from avse.dsp.stft import SpectralFrontEnd
from avse.errors import InputError
from avse.io.audio import load_audio
from avse.nets.noise_tracker import NoiseTracker, save_tracker
from avse.train.noise_tracker import MixtureSampler, train
from avse.utils.cli import run_main
from avse.utils.config import none_or, save_config, yaml_value
from avse.utils.fileio import write_csv_rows
from avse.utils.seeding import utt_rng

log = logging.getLogger("avse.train_noise_tracker")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speech_dir", required=True, help="clean training speech (data dir)")
    p.add_argument("--noise_dir", required=True, help="noise recordings (data dir with utt2noise)")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--fs", type=int, default=16000)
    p.add_argument("--n_fft", type=int, default=510, help="STFT of the prior's front-end")
    p.add_argument("--hop", type=int, default=128)
    p.add_argument("--embed_model", type=none_or(str), default=None,
                   help="noise-embedding model (avse.bin.train_noise_embed): condition on the scene")
    p.add_argument("--embed_modality", default="text", choices=["text", "image"],
                   help="modality of the training conditions (descriptions or rendered pictures)")
    p.add_argument("--embeds_per_type", type=int, default=64, help="conditions drawn per noise type")
    p.add_argument("--drop_prob", type=float, default=0.2, help="rate of null conditions in training")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--blocks", type=int, default=7, help="dilated blocks: receptive field ~2^(blocks+1) frames")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--seconds", type=float, default=2.0, help="length of a training mixture")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--snr", type=yaml_value, default=[-7.0, 12.0], help="YAML [low, high]: SNR range (dB)")
    p.add_argument("--reverb_prob", type=float, default=0.5,
                   help="rate of reverberant speech images (synthetic rooms, T60 0.2-1.0 s)")
    p.add_argument("--noise_aug", type=float, default=0.0,
                   help="rate of new noise instances (two recordings of the type mixed, random speed and tilt)")
    p.add_argument("--max_speech", type=int, default=400, help="utterances of --speech_dir, spread over talkers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--verbose", type=int, default=1)
    return p


def load_recordings(args) -> tuple[list, dict]:
    """The speech (a spread of ``--max_speech`` utterances) and the noise recordings by type."""
    wav = DataDir(args.speech_dir).table("wav.scp")
    if not wav or args.max_speech < 1:
        raise InputError(f"--speech_dir {args.speech_dir}: need a non-empty wav.scp and --max_speech >= 1")
    speech = [load_audio(wav[k], args.fs, utt=k)[0].astype(np.float32) for k in spread_keys(wav, args.max_speech)]
    d = DataDir(args.noise_dir)
    nwav, u2n = d.table("wav.scp"), d.table("utt2noise")
    noise: dict = {}
    for k, path in nwav.items():
        if k not in u2n:
            raise InputError(f"{args.noise_dir}/utt2noise: no entry for {k!r}")
        noise.setdefault(u2n[k], []).append(load_audio(path, args.fs, utt=k)[0].astype(np.float32))
    return speech, noise


def conditions(args, types: list) -> dict | None:
    """Per noise type, ``--embeds_per_type`` embeddings of random descriptions or pictures."""
    if not args.embed_model:
        return None
    from avse.corpus.synthetic.scenes import render_scene
    from avse.enhance.embed_noise import load_embedder

    emb = load_embedder(args.embed_model)
    rng = utt_rng(args.seed, "noise_tracker_conditions")
    out = {}
    for t in types:
        if args.embed_modality == "text":
            out[t] = emb.texts([describe(t, rng) for _ in range(args.embeds_per_type)])
        else:
            out[t] = emb.images([render_scene(t, rng, int(emb.meta.get("image_size", 64)))
                                 for _ in range(args.embeds_per_type)])
    return {t: v.float().cpu() for t, v in out.items()}


def plot_loss(rows: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [r["step"] for r in rows]
    for key in ("loss", "valid", "valid_nocond"):
        if key in rows[0]:
            ax.plot(steps, [r[key] for r in rows], label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("IS divergence per bin")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args) -> None:
    torch.set_num_threads(max(1, args.num_threads))
    torch.manual_seed(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    speech, noise = load_recordings(args)
    emb = conditions(args, sorted(noise))
    frontend = SpectralFrontEnd(n_fft=args.n_fft, hop=args.hop)
    sampler = MixtureSampler(speech, noise, args.fs, snr_range=args.snr, reverb_prob=args.reverb_prob, emb=emb,
                             noise_aug=args.noise_aug)
    cond_dim = 0 if emb is None else int(next(iter(emb.values())).shape[-1])
    model_conf = dict(n_freq=frontend.n_freq, hidden=args.hidden, blocks=args.blocks, cond_dim=cond_dim)
    model = NoiseTracker(**model_conf)
    log.info("noise tracker: %d speech utterances, noise types %s, %s, %d parameters", len(speech),
             sampler.types, f"conditioned on {args.embed_modality} embeddings" if emb else "blind",
             sum(p.numel() for p in model.parameters()))
    n = int(round(args.seconds * args.fs))
    valid = sampler.batch(utt_rng(args.seed, "noise_tracker_valid"), 32, n)
    rows = []

    def on_log(row):
        rows.append(row)
        log.info("step %d loss %.4f%s", row["step"], row["loss"],
                 "".join(f" {k} {row[k]:.4f}" for k in ("valid", "valid_nocond") if k in row))

    train(model, frontend, sampler, utt_rng(args.seed, "noise_tracker_train"), args.steps, args.batch_size, n,
          args.lr, args.drop_prob, on_log=on_log, valid=valid)
    meta = {"frontend": frontend.config(), "fs": args.fs, "embed_model": args.embed_model,
            "embed_modality": args.embed_modality if emb else None, "types": sampler.types,
            "snr": list(sampler.snr_range), "reverb_prob": args.reverb_prob, "noise_aug": args.noise_aug,
            "steps": args.steps}
    save_tracker(os.path.join(args.out_dir, "model.pt"), model, model_conf, meta)
    write_csv_rows(os.path.join(args.out_dir, "train_log.csv"), rows)
    if rows:
        plot_loss(rows, os.path.join(args.out_dir, "loss.png"))
    save_config(args, args.out_dir)
    log.info("wrote %s", os.path.join(args.out_dir, "model.pt"))


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
