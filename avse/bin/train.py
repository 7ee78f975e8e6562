"""Stage 4: train the clean-speech score-based diffusion prior.

    python -m avse.bin.train --config conf/train.yaml --train_dir dump/raw/train \\
        [--valid_dir dump/raw/valid] --out_dir exp/prior [--ngpu N] [--seed S] [--resume true]

Denoising score matching on random crops of compressed complex STFTs of clean
speech (Song et al., ICLR 2021; SGMSE+, Richter et al. 2023; the unconditional prior
of UDiffSE, Nortier et al., ICASSP 2024 and UDiffSE+, Ayilo et al., ICASSP 2025).
Every YAML key is a flag (``--model_conf.nf 32``). ``--ngpu N > 1`` must be launched
with ``torchrun --standalone --nproc_per_node N`` (``avse.sh`` does it).

Writes ``out_dir/config.yaml`` (resolved options), ``train_log.csv`` (step,
train_loss, valid_loss, lr, grad_norm, seconds), ``loss.png``, ``checkpoints/``
(model, EMA, optimiser, step, RNG states; every ``ckpt_interval`` steps) and, when
``max_steps`` is reached, ``model.pt`` (EMA weights + architecture/SDE/front-end
config: what ``avse.bin.enhance`` loads). ``--resume true`` continues from the last
checkpoint and reaches the same weights as an uninterrupted run.

Audio-visual prior (AV-UDiffSE, Ayilo et al., ICASSP 2025): ``--lip_encoder resnet_tcn``
(``--lip_encoder_conf``) reads ``lip.scp`` next to ``wav.scp`` (crops aligned in time,
visual corruption from ``--visual_aug``), optionally starting from a synchrony-
pretrained encoder (``--lip_encoder_init exp/lip_encoder/lip_encoder.pt``, from
``avse.bin.train_lip_encoder``), frozen with ``--freeze_lip_encoder true``. With
``--lip_encoder resnet18_tcn`` it may start from a released lip-reading ResNet-18 +
MS-TCN checkpoint (``--lip_encoder_init lrw_resnet18_mstcn.pth.tar``;
``--lip_encoder_init_format auto|avse|lrw_resnet_tcn``, :mod:`avse.train.lip_init`).
``--lip_encoder features --lip_encoder_conf "{in_dim: D}"`` conditions on visual
features computed elsewhere, ``(T, D)`` ``.npy`` per utterance at 25 fps listed in
``lip_feats.scp`` (``--lip_table`` names another table). The fusion
is ``--model_conf.fusion concat|xattn|gated_xattn``; the per-frame lip reliability of
``gated_xattn`` comes from ``--lip_rel_source conf|rel|none`` (lip_conf.scp,
lip_rel.scp, or 1). ``--init_model exp/train/model.pt`` starts the audio part from a
trained audio-only prior (the new lip encoder and fusion modules add nothing at first),
and ``--freeze_audio true`` then trains only the lip encoder and the fusion modules.
"""
import argparse
import logging
import os
import sys

from avse.utils.cli import run_main
from avse.errors import StageError
from avse.utils.config import none_or, save_config, str2bool, to_dict, yaml_value

log = logging.getLogger("avse.train")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data and output")
    g.add_argument("--train_dir", required=True, help="dump dir of clean training speech (wav.scp)")
    g.add_argument("--valid_dir", type=none_or(str), default=None, help="dump dir for the validation loss")
    g.add_argument("--out_dir", required=True, help="experiment dir")
    g.add_argument("--fs", type=int, default=16000, help="sample rate (Hz) of the data")
    g.add_argument("--crop_frames", type=int, default=256, help="STFT frames per training crop")
    g.add_argument("--valid_utts", type=int, default=16, help="validation crops (one per utterance)")
    g = p.add_argument_group("model")
    g.add_argument("--model", default="ncsnpp",
                   help="prior (registry name): ncsnpp (diffusion score network), vae, rvae (VAE priors)")
    g.add_argument("--model_conf", type=yaml_value, default={"preset": "tiny"}, help="network options")
    g.add_argument("--sde", default="ouve", help="forward SDE (registry name)")
    g.add_argument("--sde_conf", type=yaml_value, default={}, help="SDE options")
    g.add_argument("--frontend_conf", type=yaml_value, default={}, help="SpectralFrontEnd options")
    g.add_argument("--kl_weight", type=float, default=1.0, help="VAE priors: weight of the KL term")
    g.add_argument("--envelope_nll", type=float, default=0.0,
                   help="AV diffusion priors with lip_variance: weight of the envelope's Gaussian likelihood "
                        "of the clean crop, added to the DSM loss in training (0: off)")
    g.add_argument("--init_utts", type=int, default=64,
                   help="VAE priors: training crops of the data-dependent initialisation")
    g = p.add_argument_group("audio-visual conditioning")
    g.add_argument("--lip_encoder", type=none_or(str), default=None,
                   help="lip encoder (registry name, e.g. resnet_tcn); null: audio-only prior")
    g.add_argument("--lip_encoder_conf", type=yaml_value, default={}, help="lip encoder options")
    g.add_argument("--lip_encoder_init", type=none_or(str), default=None,
                   help="weights of the lip encoder: lip_encoder.pt from avse.bin.train_lip_encoder, or a released "
                        "lip-reading ResNet-18 + MS-TCN checkpoint (.pth/.pth.tar) for lip_encoder resnet18_tcn "
                        "(null: from scratch)")
    g.add_argument("--lip_encoder_init_format", default="auto", choices=["auto", "avse", "lrw_resnet_tcn"],
                   help="kind of --lip_encoder_init file; auto: from its contents")
    g.add_argument("--lip_table", type=none_or(str), default=None,
                   help="table of the visual input in the train/valid dirs (a file name); null: lip.scp for crop "
                        "encoders, lip_feats.scp for lip_encoder features")
    g.add_argument("--freeze_lip_encoder", type=str2bool, default=False, help="keep the lip encoder fixed")
    g.add_argument("--init_model", type=none_or(str), default=None,
                   help="a prior (model.pt or checkpoint) whose weights start the matching part of this "
                        "model, e.g. the audio-only prior under an audio-visual one")
    g.add_argument("--freeze_audio", type=str2bool, default=False,
                   help="train only the lip encoder and the fusion modules (needs --lip_encoder, --init_model)")
    g.add_argument("--lip_rel_source", default="conf", choices=["conf", "rel", "none"],
                   help="per-frame lip reliability: lip_conf.scp, lip_rel.scp or none (1)")
    g.add_argument("--visual_aug", type=yaml_value,
                   default={"p_drop_utt": 0.2, "p_drop_frames": 0.3, "max_drop_rate": 0.6, "max_burst": 5,
                            "p_occlude": 0.2, "p_occlude_flag": 0.5},
                   help="random visual corruption of training crops (VisualAugment options; null: none)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch_size", type=int, default=4, help="crops per step and process")
    g.add_argument("--max_steps", type=int, default=100000)
    g.add_argument("--optim", default="adam", help="adam or adamw")
    g.add_argument("--optim_conf", type=yaml_value, default={"lr": 1.0e-4}, help="optimiser options")
    g.add_argument("--warmup_steps", type=int, default=0, help="linear learning-rate warm-up")
    g.add_argument("--lr_schedule", default="constant", choices=["constant", "cosine"],
                   help="after the warm-up: constant, or cosine decay to min_lr_ratio * lr at max_steps")
    g.add_argument("--min_lr_ratio", type=float, default=0.0, help="final lr / lr of the cosine schedule")
    g.add_argument("--grad_clip", type=none_or(float), default=5.0, help="max global grad norm; null: none")
    g.add_argument("--ema_decay", type=float, default=0.999)
    g.add_argument("--ema_warmup", type=str2bool, default=True, help="decay min(d, (1+n)/(10+n))")
    g.add_argument("--use_amp", type=str2bool, default=False, help="bf16 autocast (CUDA only)")
    g = p.add_argument_group("run")
    g.add_argument("--ngpu", type=int, default=0, help="0: CPU; 1: one GPU; >1: DDP via torchrun")
    g.add_argument("--num_workers", type=int, default=2, help="DataLoader worker processes")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--resume", type=str2bool, default=False, help="continue from the last checkpoint")
    g.add_argument("--log_interval", type=int, default=50, help="steps between log rows")
    g.add_argument("--valid_interval", type=int, default=500, help="steps between validation losses")
    g.add_argument("--valid_batch_size", type=none_or(int), default=None)
    g.add_argument("--ckpt_interval", type=int, default=1000, help="steps between checkpoints")
    g.add_argument("--keep_checkpoints", type=int, default=2)
    g.add_argument("--progress", type=str2bool, default=True, help="show a progress bar")
    g.add_argument("--verbose", type=int, default=1)
    return p


def check_args(args) -> None:
    from avse.errors import InputError

    for k in ("max_steps", "batch_size", "crop_frames", "log_interval", "valid_interval", "ckpt_interval",
              "valid_utts", "keep_checkpoints"):
        if getattr(args, k) < 1:
            raise InputError(f"--{k} must be >= 1, got {getattr(args, k)}")
    if args.num_workers < 0:
        raise InputError(f"--num_workers must be >= 0, got {args.num_workers}")
    for k in ("model_conf", "sde_conf", "frontend_conf", "optim_conf", "lip_encoder_conf"):
        if not isinstance(getattr(args, k) or {}, dict):
            raise InputError(f"--{k} must be a mapping, got {getattr(args, k)!r}")
    if not args.lip_encoder and (args.lip_encoder_init or args.freeze_lip_encoder or args.lip_table):
        raise InputError("--lip_encoder_init / --freeze_lip_encoder / --lip_table need --lip_encoder "
                         "(an audio-visual prior)")
    if args.lip_table and os.path.basename(args.lip_table) != args.lip_table:
        raise InputError(f"--lip_table is a file name inside --train_dir / --valid_dir, got a path {args.lip_table!r}")
    if args.freeze_audio and not (args.lip_encoder and args.init_model):
        raise InputError("--freeze_audio needs --lip_encoder and --init_model (the audio part to keep)")


def run(args) -> None:
    check_args(args)
    from avse.train import distributed as D
    from avse.train.trainer import Trainer

    if not os.path.isdir(args.train_dir):
        raise StageError(f"{args.train_dir}: training data dir not found; run stage 3 first")
    info = D.setup(args.ngpu)
    try:
        cfg = to_dict(args)
        ckpts = os.path.join(args.out_dir, "checkpoints")
        if not args.resume and os.path.isdir(ckpts) and os.listdir(ckpts):
            raise StageError(f"{args.out_dir} already has checkpoints; pass --resume true to continue "
                             "or remove the directory to start again")
        trainer = Trainer(cfg, info)
        if args.resume:
            trainer.resume()
        if info.is_main:
            os.makedirs(args.out_dir, exist_ok=True)
            save_config(args, args.out_dir)
        trainer.run()
        if info.is_main:
            log.info("done: %s (step %d)", os.path.join(args.out_dir, "model.pt"), trainer.step)
    finally:
        D.cleanup(info)


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
