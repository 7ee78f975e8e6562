"""Does an audio-visual prior use the lips? Loss with true, missing and wrong lips.

    python -m avse.bin.lip_usage --model exp/train_av/model.pt --data_dir dump/raw/valid \\
        [--n_crops 64] [--times 0.1 0.3 0.5 0.7 0.9] [--out_dir exp/train_av/lip_usage]

Takes ``n_crops`` crops (with their lips) of the data dir's first utterances, as the
training's validation does, and prints the denoising loss of the model at each
diffusion time with the true lips, with the video marked missing and with another
crop's lips, plus the relative gains (:mod:`avse.train.lip_usage`). With ``--out_dir``
the table goes to ``lip_usage.md``, the numbers to ``lip_usage.json`` and the options
to ``config.yaml``. The data dir needs ``wav.scp`` and ``lip.scp`` (and the
reliability table the model was trained with: ``lip_conf.scp`` or ``lip_rel.scp``).
"""
import argparse
import json
import logging
import os
import sys

from avse.errors import InputError
from avse.utils.cli import run_main
from avse.utils.config import save_config
from avse.utils.fileio import atomic_path

log = logging.getLogger("avse.lip_usage")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model.pt of an audio-visual prior (avse.bin.train)")
    p.add_argument("--data_dir", required=True, help="data dir with wav.scp and lip.scp (clean speech)")
    p.add_argument("--n_crops", type=int, default=64, help="crops (first utterances, seeded offsets)")
    p.add_argument("--times", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9],
                   help="diffusion times t (within the SDE's [t_eps, T])")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out_dir", default=None, help="write lip_usage.{md,json} and config.yaml here")
    p.add_argument("--num_threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--verbose", type=int, default=1)
    return p


def run(args) -> None:
    import torch

    from avse.train.av_dataset import av_dataset_from_config
    from avse.train.checkpoint import load_model
    from avse.train.dataset import fixed_crops, read_utterances
    from avse.train.lip_usage import format_table, lip_usage

    torch.set_num_threads(max(1, args.num_threads))
    if args.n_crops < 2 or args.batch_size < 1:
        raise InputError(f"need --n_crops >= 2 and --batch_size >= 1, got {args.n_crops}, {args.batch_size}")
    lm = load_model(args.model)
    cfg = dict(lm.meta.get("train_config") or {})
    if not cfg.get("lip_encoder"):
        raise InputError(f"{args.model}: not an audio-visual prior (trained without lip_encoder)")
    fe_conf = lm.frontend.config()
    utts = read_utterances(args.data_dir, lm.fs, int(fe_conf.get("n_fft", 510)), "evaluation")
    crops = fixed_crops(av_dataset_from_config(cfg, args.data_dir, utts, fe_conf, train=False),
                        args.n_crops, args.seed)
    x0, lips, mask, rel = crops
    rows = lip_usage(lm.model, lm.sde, x0, {"cond": lips, "cond_mask": mask, "cond_rel": rel},
                     args.times, batch_size=args.batch_size, seed=args.seed)
    table = format_table(rows)
    print(f"{args.model} on {x0.shape[0]} crops of {args.data_dir}:\n{table}")
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        with atomic_path(os.path.join(args.out_dir, "lip_usage.md")) as tmp, open(tmp, "w") as f:
            f.write(table + "\n")
        with atomic_path(os.path.join(args.out_dir, "lip_usage.json")) as tmp, open(tmp, "w") as f:
            json.dump({"model": args.model, "data_dir": args.data_dir, "n_crops": int(x0.shape[0]),
                       "rows": rows}, f, indent=1)
        save_config(args, args.out_dir)


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
