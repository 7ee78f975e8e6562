"""Lip-encoder pretraining: frame-level lip reading on phone labels, or synchrony contrast.

    python -m avse.bin.train_lip_encoder --config conf/lip_encoder.yaml \\
        --train_dir dump/raw/train [--valid_dir dump/raw/valid] --out_dir exp/lip_encoder

Trains ``--lip_encoder`` (e.g. ``resnet_tcn``, options ``--lip_encoder_conf``) from
scratch on clean audio-visual data (``wav.scp`` + ``lip.scp``) with ``--objective``:

* ``phones`` (supervised): every video frame is classified into the phone at its
  centre from the time alignments ``utt2phones`` of the dump dir
  (:mod:`avse.train.lip_phones`); accuracy = frame phone accuracy, ``viseme_accuracy``
  the same on viseme classes (phones the lips cannot tell apart count as right).
* ``sync`` (self-supervised): windows of lip frames must find the synchronous audio
  among time-shifted copies (an InfoNCE over shifts of up to ``--max_shift`` video
  frames, :mod:`avse.train.sync`); accuracy = fraction of windows whose best audio is
  the synchronous one, chance ``1 / (2 max_shift + 1)`` without batch negatives.

Crops of ``--crop_frames`` STFT frames start on video-frame boundaries
(:class:`avse.train.av_dataset.AVCropDataset`).

Writes ``out_dir/lip_encoder.pt`` (the encoder's name, options and weights: give it to
``avse.bin.train --lip_encoder_init``), ``train_log.csv`` (step, loss, accuracy,
viseme_accuracy, valid_loss, valid_accuracy, valid_viseme_accuracy) and
``config.yaml``. An existing ``lip_encoder.pt`` is kept (the run is skipped).
"""
import argparse
import csv
import logging
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from avse.errors import InputError, StageError
from avse.utils.cli import run_main
from avse.utils.config import none_or, save_config, str2bool, to_dict, yaml_value
from avse.utils.device import resolve_device
from avse.utils.fileio import atomic_open
from avse.utils.seeding import stable_hash

log = logging.getLogger("avse.train_lip_encoder")
LOG_FIELDS = ["step", "loss", "accuracy", "viseme_accuracy", "valid_loss", "valid_accuracy",
              "valid_viseme_accuracy", "seconds"]
OBJECTIVES = ("phones", "sync")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_dir", required=True, help="dump dir of clean AV speech (wav.scp, lip.scp)")
    p.add_argument("--valid_dir", type=none_or(str), default=None, help="dump dir for the validation loss")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--fs", type=int, default=16000)
    p.add_argument("--frontend_conf", type=yaml_value, default={}, help="SpectralFrontEnd options")
    p.add_argument("--crop_frames", type=int, default=160, help="STFT frames per crop (160 = 32 video frames)")
    p.add_argument("--lip_encoder", default="resnet_tcn", help="lip encoder (registry name)")
    p.add_argument("--lip_encoder_conf", type=yaml_value, default={}, help="lip encoder options")
    p.add_argument("--objective", default="sync", choices=OBJECTIVES,
                   help="phones: frame phone classification on utt2phones; sync: synchrony contrast")
    p.add_argument("--labels", default="utt2phones", help="time-alignment table of the dump dirs (phones)")
    p.add_argument("--sync_dim", type=int, default=128, help="size of the contrastive embedding")
    p.add_argument("--audio_dim", type=int, default=128, help="width of the audio encoder")
    p.add_argument("--max_shift", type=int, default=6, help="largest shift (video frames) of a negative")
    p.add_argument("--window", type=int, default=5, help="video frames per compared window")
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--batch_negatives", type=str2bool, default=True,
                   help="also contrast with the other crops of the batch")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--max_steps", type=int, default=500)
    p.add_argument("--optim_conf", type=yaml_value, default={"lr": 1.0e-3}, help="Adam options")
    p.add_argument("--grad_clip", type=none_or(float), default=5.0)
    p.add_argument("--valid_utts", type=int, default=16)
    p.add_argument("--log_interval", type=int, default=25)
    p.add_argument("--num_workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--progress", type=str2bool, default=True)
    p.add_argument("--verbose", type=int, default=1)
    return p


class Objective:
    """One pretraining task: its crops, its model around the encoder and its loss.

    ``loss(batch) -> (loss, accuracy, viseme accuracy or None)`` on a loader batch."""

    def __init__(self, args, enc, dev):
        self.args, self.dev = args, dev
        self.train = self.dataset(args.train_dir, "training")
        self.model = self.build(enc).to(dev)

    def crops(self, data_dir, what, **kw):
        from avse.dsp.stft import SpectralFrontEnd
        from avse.lips.tables import lip_tables
        from avse.train.av_dataset import AVCropDataset
        from avse.train.dataset import read_utterances

        fe = dict(self.args.frontend_conf or {})
        utts = read_utterances(data_dir, self.args.fs, SpectralFrontEnd(**fe).n_fft, what)
        cls = kw.pop("cls", AVCropDataset)
        return cls(utts, lip_tables(data_dir, "none"), fe, self.args.crop_frames, self.args.fs, **kw)


class SyncObjective(Objective):
    """Audio-visual synchrony InfoNCE (:mod:`avse.train.sync`)."""

    def dataset(self, data_dir, what):
        ds = self.crops(data_dir, what)
        need = self.args.window + 2 * self.args.max_shift
        if ds.n_video < need:
            raise InputError(f"--crop_frames {self.args.crop_frames} gives {ds.n_video} video frames; the sync "
                             f"task needs at least window + 2 max_shift = {need}")
        return ds

    def build(self, enc):
        from avse.train.sync import LipSyncModel
        spf, hop = self.train.spf, self.train.frontend.hop
        if spf % hop:
            raise InputError(f"the sync objective pools whole STFT frames per video frame: fs / fps = {spf} "
                             f"samples is not a multiple of the hop {hop} (use --objective phones or another hop)")
        return LipSyncModel(enc, self.train.frontend.n_freq, self.args.sync_dim, self.args.audio_dim,
                            self.train.spf // self.train.frontend.hop)

    def loss(self, batch):
        from avse.train.sync import sync_infonce
        spec, lips, mask = (b.to(self.dev) for b in batch[:3])
        v, a = self.model(spec, lips, mask)
        a_ = self.args
        loss, acc = sync_infonce(v, a, mask[:, :v.shape[1]], a_.max_shift, a_.window, a_.temperature,
                                 a_.batch_negatives)
        return loss, float(acc), None


class PhoneObjective(Objective):
    """Frame phone classification on the time alignments (:mod:`avse.train.lip_phones`)."""

    def __init__(self, args, enc, dev):
        self.phones = None
        super().__init__(args, enc, dev)

    def dataset(self, data_dir, what):
        from avse.train.lip_phones import LabelledAVCrops, read_labels, viseme_classes
        alis, phones = read_labels(data_dir, self.phones, self.args.labels)
        if self.phones is None:
            self.phones = phones
            self.visemes = torch.from_numpy(viseme_classes(phones))
            log.info("%d phone classes (%d viseme classes) from %s", len(phones),
                     int(self.visemes.max()) + 1, data_dir)
        return self.crops(data_dir, what, cls=LabelledAVCrops, alignments=alis, phones=self.phones)

    def build(self, enc):
        from avse.train.lip_phones import LipPhoneModel
        return LipPhoneModel(enc, len(self.phones))

    def loss(self, batch):
        from avse.train.lip_phones import phone_loss
        _, lips, mask, _, labels = (b.to(self.dev) for b in batch)
        return phone_loss(self.model(lips, mask), labels, self.visemes)


def check_args(args) -> None:
    for k in ("batch_size", "max_steps", "crop_frames", "sync_dim", "audio_dim", "window", "log_interval",
              "valid_utts"):
        if getattr(args, k) < 1:
            raise InputError(f"--{k} must be >= 1, got {getattr(args, k)}")
    if args.max_shift < 1 or args.temperature <= 0:
        raise InputError("--max_shift must be >= 1 and --temperature > 0")
    for k in ("frontend_conf", "lip_encoder_conf", "optim_conf"):
        if not isinstance(getattr(args, k) or {}, dict):
            raise InputError(f"--{k} must be a mapping, got {getattr(args, k)!r}")
    from avse.nets.lip_encoder import encoder_input

    if encoder_input(args.lip_encoder) != "crops":
        raise InputError(f"--lip_encoder {args.lip_encoder} reads precomputed visual features; pretraining here "
                         "learns from mouth crops (lip.scp): train the prior with it directly")


@torch.no_grad()
def evaluate(obj: Objective, batch):
    obj.model.eval()
    loss, acc, vacc = obj.loss(batch)
    obj.model.train()
    return float(loss), acc, vacc


def _fmt(v, spec):
    return "" if v is None else format(v, spec)


def run(args) -> None:
    check_args(args)
    from avse.nets.lip_encoder import build_lip_encoder
    from avse.train.dataset import StepSampler, fixed_crops, make_loader
    from avse.train.sync import save_lip_encoder

    out = os.path.join(args.out_dir, "lip_encoder.pt")
    if os.path.isfile(out):
        log.info("%s exists; nothing to do (remove it to train again)", out)
        return
    if not os.path.isdir(args.train_dir):
        raise StageError(f"{args.train_dir}: training data dir not found; run stage 3 first")
    dev = resolve_device(args.device)
    torch.manual_seed(stable_hash(args.seed, "lip_init"))
    enc = build_lip_encoder(args.lip_encoder, args.lip_encoder_conf)
    obj = (PhoneObjective if args.objective == "phones" else SyncObjective)(args, enc, dev)
    valid = None
    if args.valid_dir:
        valid = fixed_crops(obj.dataset(args.valid_dir, "validation"), args.valid_utts, args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    save_config(args, args.out_dir)
    ocfg = {"lr": 1e-3, **(args.optim_conf or {})}
    ocfg = {k: (float(v) if k in ("lr", "weight_decay", "eps") else v) for k, v in ocfg.items()}
    opt = torch.optim.Adam(obj.model.parameters(), **ocfg)
    sampler = StepSampler(len(obj.train), args.batch_size, args.seed)
    loader = make_loader(obj.train, sampler, args.num_workers)
    rows, acc_l, acc_a, acc_v, step, t0 = [], [], [], [], 0, time.time()
    va = None
    bar = tqdm(total=args.max_steps, disable=not args.progress, desc=f"lip {args.objective}", unit="step")
    for batch in loader:
        torch.manual_seed(stable_hash(args.seed, "lip_step", step))
        loss, acc, vacc = obj.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip:
            torch.nn.utils.clip_grad_norm_(obj.model.parameters(), float(args.grad_clip))
        if not torch.isfinite(loss):
            raise StageError(f"step {step + 1}: non-finite {args.objective} loss; lower the learning rate")
        opt.step()
        step += 1
        bar.update(1)
        acc_l.append(float(loss.detach()))
        acc_a.append(acc)
        if vacc is not None:
            acc_v.append(vacc)
        if step % args.log_interval == 0 or step == args.max_steps:
            row = {"step": step, "loss": f"{np.mean(acc_l):.5f}", "accuracy": f"{np.mean(acc_a):.4f}",
                   "viseme_accuracy": f"{np.mean(acc_v):.4f}" if acc_v else "",
                   "valid_loss": "", "valid_accuracy": "", "valid_viseme_accuracy": "",
                   "seconds": f"{time.time() - t0:.1f}"}
            if valid is not None:
                vl, va, vva = evaluate(obj, valid)
                row.update(valid_loss=f"{vl:.5f}", valid_accuracy=f"{va:.4f}",
                           valid_viseme_accuracy=_fmt(vva, ".4f"))
            rows.append(row)
            acc_l, acc_a, acc_v = [], [], []
            log.info("step %d: %s loss %s, accuracy %s (visemes %s), valid %s / %s (visemes %s)", step,
                     args.objective, row["loss"], row["accuracy"], row["viseme_accuracy"] or "-",
                     row["valid_loss"] or "-", row["valid_accuracy"] or "-", row["valid_viseme_accuracy"] or "-")
            _write_log(os.path.join(args.out_dir, "train_log.csv"), rows)
        if step >= args.max_steps:
            break
    bar.close()
    save_lip_encoder(out, args.lip_encoder, enc.cpu(), step, to_dict(args), va)
    log.info("wrote %s (step %d)", out, step)


def _write_log(path, rows):
    with atomic_open(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
