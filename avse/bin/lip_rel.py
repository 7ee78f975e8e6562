"""Per-frame lip reliability of a data dir: ``lip.scp`` -> ``lip_rel.scp``.

    python -m avse.bin.lip_rel --data_dir dump/raw/test --model exp/lip_rel/model.pt \\
        [--out_dir DIR] [--smooth 5]

For every utterance of ``lip.scp`` the trained network
(:func:`avse.lips.reliability.load_lip_rel`) scores each frame in [0, 1] (1: a
usable mouth crop; 0: missing, occluded, blurred, dark or off-centre) and writes
``(T,)`` float32 ``.npy`` files to ``out_dir/lip_rel/`` and the table
``out_dir/lip_rel.scp`` (``out_dir`` defaults to the data dir itself, which gains
the table). Files already written are kept, so an interrupted run resumes; the
table and ``lip_rel/config.yaml`` are written when all are done. The scores do not
include the extraction confidence (``lip_conf.scp``, 0 on interpolated frames);
a consumer may combine both.
"""
import argparse
import logging
import os
import sys

import numpy as np
from tqdm import tqdm

from avse.errors import InputError, StageError
from avse.io.scp import read_table, write_table
from avse.lips.reliability import load_lip_rel
from avse.utils.cli import run_main
from avse.utils.config import save_config, str2bool
from avse.utils.fileio import atomic_path

log = logging.getLogger("avse.lip_rel")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True, help="dir with lip.scp")
    p.add_argument("--model", required=True, help="model.pt of avse.bin.train_lip_rel")
    p.add_argument("--out_dir", default=None, help="default: the data dir")
    p.add_argument("--smooth", type=int, default=1, help="running median over frames (odd; 1: none)")
    p.add_argument("--num_threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--progress", type=str2bool, default=True)
    p.add_argument("--verbose", type=int, default=1)
    return p


def run(args) -> None:
    import torch

    torch.set_num_threads(max(1, args.num_threads))
    scp = os.path.join(args.data_dir, "lip.scp")
    if not os.path.isfile(scp):
        raise StageError(f"{args.data_dir}: no lip.scp; run stage 3 with a lip backend first")
    out_dir = args.out_dir or args.data_dir
    rel = load_lip_rel(args.model, smooth=args.smooth)
    table = read_table(scp)
    rows = {}
    for utt, path in tqdm(table.items(), desc="lip_rel", unit="utt", disable=not args.progress):
        out = os.path.join(out_dir, "lip_rel", f"{utt}.npy")
        rows[utt] = out
        if os.path.isfile(out):
            continue
        try:
            lips = np.load(path)
        except (OSError, ValueError) as e:
            raise InputError(f"{scp}: utterance {utt!r}: cannot read {path}: {e}") from e
        try:
            scores = rel.reliability(lips)
        except InputError as e:
            raise InputError(f"{scp}: utterance {utt!r}: {e}") from e
        with atomic_path(out) as tmp:
            np.save(tmp, scores)
    save_config(args, os.path.join(out_dir, "lip_rel"))
    write_table(os.path.join(out_dir, "lip_rel.scp"), rows)
    log.info("%s: reliability of %d utterances", os.path.join(out_dir, "lip_rel.scp"), len(rows))


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
