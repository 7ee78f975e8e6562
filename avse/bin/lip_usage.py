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

``--diagnose true`` adds the reasons a prior may ignore the lips
(:mod:`avse.train.lip_diagnostics`): gradient and weight norms of the lip encoder, the
fusion modules, the lip-variance head and the rest; the lip embeddings' variation over
time; the training augmentation's share of missing video (``--aug_draws`` crops of the
data dir drawn as in training, with the ``visual_aug`` of the model's training config or
of ``--train_config``); the score's change without or with other lips; and the lip/STFT
frame alignment. It goes under the table (``## Diagnostics`` in ``lip_usage.md``,
``"diagnostics"`` in ``lip_usage.json``).
"""
import argparse
import json
import logging
import os
import sys

from avse.errors import InputError
from avse.utils.cli import run_main
from avse.utils.config import load_yaml, save_config, str2bool
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
    p.add_argument("--diagnose", type=str2bool, default=False,
                   help="add the diagnostics of avse.train.lip_diagnostics (why the lips may be ignored)")
    p.add_argument("--train_config", default=None,
                   help="training YAML for --diagnose's augmentation check (default: the model's stored one)")
    p.add_argument("--aug_draws", type=int, default=200, help="training crops drawn for the augmentation check")
    p.add_argument("--num_threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--verbose", type=int, default=1)
    return p


def run(args) -> None:
    import torch

    from avse.train.av_dataset import av_dataset_from_config
    from avse.nets.storage import load_model
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
    utts = read_utterances(args.data_dir, lm.fs, lm.frontend.n_fft, "evaluation")
    crops = fixed_crops(av_dataset_from_config(cfg, args.data_dir, utts, fe_conf, train=False),
                        args.n_crops, args.seed)
    x0, lips, mask, rel = crops
    rows = lip_usage(lm.model, lm.sde, x0, {"cond": lips, "cond_mask": mask, "cond_rel": rel},
                     args.times, batch_size=args.batch_size, seed=args.seed)
    table = format_table(rows)
    result = {"model": args.model, "data_dir": args.data_dir, "n_crops": int(x0.shape[0]), "rows": rows}
    if args.diagnose:
        result["diagnostics"] = diagnose(args, lm, cfg, utts, fe_conf, x0, lips, mask, rel)
        from avse.train.lip_diagnostics import format_diagnostics
        table += "\n\n" + format_diagnostics(result["diagnostics"])
    print(f"{args.model} on {x0.shape[0]} crops of {args.data_dir}:\n{table}")
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        with atomic_path(os.path.join(args.out_dir, "lip_usage.md")) as tmp, open(tmp, "w") as f:
            f.write(table + "\n")
        with atomic_path(os.path.join(args.out_dir, "lip_usage.json")) as tmp, open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        save_config(args, args.out_dir)


def diagnose(args, lm, cfg, utts, fe_conf, x0, lips, mask, rel) -> dict:
    """The ``--diagnose`` numbers (:mod:`avse.train.lip_diagnostics`) on the crops of the
    table: gradients (model in eval mode) with the noise of training step 0 and the
    training's frozen groups, and ``--aug_draws`` augmented training crops."""
    from avse.train import lip_diagnostics as ld
    from avse.train.av_dataset import av_dataset_from_config
    import torch

    from avse.train.objectives import dsm_draws
    from avse.utils.seeding import stable_hash

    if args.aug_draws < 0:
        raise InputError(f"need --aug_draws >= 0, got {args.aug_draws}")
    tcfg = dict(cfg)
    if args.train_config:
        tcfg.update(load_yaml(args.train_config))
    model = lm.model
    # load_model freezes every weight: give back the training's (freeze_lip_encoder, freeze_audio)
    groups = ld.param_groups(model)
    frozen = {id(p) for k in ("lip_encoder", "backbone_other") for p in groups.get(k, [])
              if tcfg.get("freeze_lip_encoder" if k == "lip_encoder" else "freeze_audio")}
    for p in model.parameters():
        p.requires_grad_(id(p) not in frozen)
    cond = {"cond": lips, "cond_mask": mask, "cond_rel": rel}
    g = torch.Generator().manual_seed(stable_hash(args.seed, "dsm", 0, 0))   # training step 0's noise
    t, z = (v.to(x0.device) for v in dsm_draws(lm.sde, g, tuple(x0.shape)))
    try:
        d = {"grad_norms": ld.grad_norms(model, lm.sde, x0, cond, t, z, args.batch_size)}
    finally:
        for p in model.parameters():
            p.requires_grad_(False)
    d["embedding"] = ld.embedding_stats(model, cond, args.batch_size)
    tcfg.setdefault("fs", lm.fs)
    tcfg.setdefault("crop_frames", int(x0.shape[-1]))
    d["augmentation"] = None
    if args.aug_draws:
        train_set = av_dataset_from_config(tcfg, args.data_dir, utts, fe_conf, train=True)
        d["augmentation"] = ld.augmentation_stats(train_set, args.aug_draws, args.seed)
    d["output_differences"] = ld.output_difference_rows(lm.model, lm.sde, x0, cond, args.times, args.seed,
                                                        args.batch_size)
    d["alignment"] = ld.alignment(lm.model, int(x0.shape[-1]), mask, lm.fs / float(fe_conf["hop"]))
    d["findings"] = ld.findings(d)
    return d


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
