"""Train the lip-reliability network on clean mouth crops with synthetic corruptions.

    python -m avse.bin.train_lip_rel --lip_scp dump/raw/train/lip.scp --out_dir exp/lip_rel \\
        [--steps 2000] [--net_conf "{pool: 2, temporal: 5}"]

Clean clips come from one or more ``lip.scp`` tables (``(T, 88, 88)`` uint8 ``.npy``);
when a ``lip_conf.scp`` lies next to one, only runs of frames with confidence at
least ``--min_conf`` are used (interpolated or padded frames are not known to be
clean). A fraction ``--valid_frac`` of the utterances is held out and scored per
corruption kind after training (:func:`avse.lips.rel_train.evaluate`).

Output in ``out_dir``: ``model.pt`` (load with :func:`avse.lips.reliability.load_lip_rel`),
``valid.json`` (accuracy per corruption kind, AUC, loss history), ``config.yaml``;
``.done`` last. A finished ``out_dir`` is not trained again.
"""
import argparse
import logging
import os
import sys

import numpy as np
import torch

from avse.errors import InputError, StageError
from avse.io.scp import read_table
from avse.lips.backends import LIP_SIZE
from avse.lips.reliability import save_lip_rel
from avse.utils.cli import run_main
from avse.utils.config import save_config, str2bool, yaml_value
from avse.utils.fileio import is_done, mark_done, write_json

log = logging.getLogger("avse.train_lip_rel")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lip_scp", nargs="+", required=True, help="one or more lip.scp of clean crops")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch_size", type=int, default=16, help="clips per step")
    p.add_argument("--clip_len", type=int, default=16, help="frames per clip")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (one-cycle schedule)")
    p.add_argument("--p_clean", type=float, default=0.3, help="share of clips left uncorrupted")
    p.add_argument("--jitter", type=str2bool, default=True,
                   help="random contrast/brightness/shift/scale/noise of the clean clips")
    p.add_argument("--net_conf", type=yaml_value, default={},
                   help="LipRelNet options: pool, channels, emb, temporal")
    p.add_argument("--min_conf", type=float, default=0.5, help="frames with lip_conf below are not used")
    p.add_argument("--valid_frac", type=float, default=0.1, help="share of utterances held out")
    p.add_argument("--max_utts", type=int, default=0, help="use at most this many utterances (0: all)")
    p.add_argument("--num_threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, default=1)
    return p


def load_clips(scp: str, min_conf: float = 0.5, min_len: int = 4) -> dict:
    """``utt -> [clean runs (T, 88, 88) uint8 memory-mapped]`` of one ``lip.scp``."""
    table = read_table(scp)
    conf_scp = os.path.join(os.path.dirname(scp), "lip_conf.scp")
    confs = read_table(conf_scp) if os.path.isfile(conf_scp) else {}
    out = {}
    for utt, path in table.items():
        try:
            lips = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise InputError(f"{scp}: utterance {utt!r}: cannot read {path}: {e}") from e
        if lips.ndim != 3 or lips.shape[1:] != (LIP_SIZE, LIP_SIZE) or lips.dtype != np.uint8:
            raise InputError(f"{scp}: utterance {utt!r}: {path} is {lips.dtype} {lips.shape}, "
                             f"expected uint8 (T, {LIP_SIZE}, {LIP_SIZE})")
        good = np.ones(len(lips), bool)
        if utt in confs:
            c = np.load(confs[utt])
            if c.shape != (len(lips),):
                raise InputError(f"{conf_scp}: utterance {utt!r}: {c.shape[0]} confidences for {len(lips)} frames")
            good = c >= min_conf
        edges = np.flatnonzero(np.diff(np.concatenate([[0], good.astype(int), [0]])))
        runs = [lips[s:e] for s, e in zip(edges[::2], edges[1::2]) if e - s >= min_len]
        if runs:
            out[f"{scp}:{utt}"] = runs
    return out


def run(args) -> None:
    from avse.lips.rel_train import evaluate, train

    if is_done(args.out_dir):
        log.info("%s is complete; nothing to do", args.out_dir)
        return
    torch.set_num_threads(max(1, args.num_threads))
    clips = {}
    for scp in args.lip_scp:
        clips.update(load_clips(scp, args.min_conf))
    keys = sorted(clips)
    if len(keys) < 2:
        raise StageError(f"{args.lip_scp}: need at least 2 utterances with clean frames, found {len(keys)}")
    rng = np.random.default_rng(args.seed)
    keys = [keys[i] for i in rng.permutation(len(keys))]
    if args.max_utts > 0:
        keys = keys[: args.max_utts]
    n_valid = min(len(keys) - 1, max(1, int(round(args.valid_frac * len(keys)))))
    valid = [r for k in keys[:n_valid] for r in clips[k]]
    train_clips = [r for k in keys[n_valid:] for r in clips[k]]
    log.info("training on %d utterances (%d frames), validating on %d", len(keys) - n_valid,
             sum(len(r) for r in train_clips), n_valid)
    net, history = train(train_clips, steps=args.steps, batch=args.batch_size, clip_len=args.clip_len,
                         lr=args.lr, seed=args.seed, net_conf=args.net_conf, p_clean=args.p_clean,
                         jitter=args.jitter)
    metrics = evaluate(net, [np.asarray(r) for r in valid], seed=args.seed + 1)
    log.info("validation: %s", ", ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items())))
    os.makedirs(args.out_dir, exist_ok=True)
    save_lip_rel(os.path.join(args.out_dir, "model.pt"), net, {"valid": metrics, "steps": args.steps})
    write_json(os.path.join(args.out_dir, "valid.json"),
               {**metrics, "n_train_utts": len(keys) - n_valid, "n_valid_utts": n_valid, "history": history})
    save_config(args, args.out_dir)
    mark_done(args.out_dir, {"valid": metrics})


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
