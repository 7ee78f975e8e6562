"""Training loop of the clean-speech priors: diffusion (denoising score matching) and VAE.

The loop (data, optimiser, EMA, logging, checkpoints, resume, DDP) is shared; what is
optimised comes from an :class:`avse.train.objectives.Objective` chosen by ``model:``
(``ncsnpp``: the DSM loss below; ``vae`` / ``rvae``: the negative ELBO of
:mod:`avse.nets.vae`, ``kl_weight`` on the KL term, after a data-dependent
initialisation from ``init_utts`` training crops).

DSM loss (Song et al., ICLR 2021; SGMSE+, Richter et al. 2023; UDiffSE, Nortier et al.,
ICASSP 2024): for a clean crop ``x0`` (B, F, T) complex, ``t ~ U[t_eps, T]`` (B,) and
complex white noise ``z`` (unit total variance per bin),
``x_t = mu_t x0 + sigma_t z`` and ``L = mean_{b,f,t} |sigma_t * s(x_t, t) + z|^2``
(so a perfect score gives ``L = 0`` only in the limit; a network that outputs zero
scores ``L = 1``). Adam, constant learning rate (optional linear warm-up), gradient
clipping by global norm, EMA of the weights (:mod:`avse.train.ema`) used for the
validation loss and the exported model, bf16 autocast on CUDA with ``use_amp``.

Audio-visual prior (``lip_encoder`` set, e.g. ``resnet_tcn``): the crops come with the
lip frames of the same time (:class:`avse.train.av_dataset.AVCropDataset`, randomly
corrupted by :class:`avse.train.visual_aug.VisualAugment` from ``visual_aug``), the
score model holds the lip encoder (``lip_encoder_conf``; initialised from a
pretrained ``lip_encoder_init`` file of :mod:`avse.bin.train_lip_encoder` or a released
lip-reading checkpoint, :mod:`avse.train.lip_init`, trained along or frozen with
``freeze_lip_encoder``; a ``features`` encoder reads precomputed visual features from
``lip_table``, default ``lip_feats.scp``), and the loss conditions the
score on ``cond`` (lips), ``cond_mask`` and ``cond_rel`` (the per-frame reliability from
``lip_rel_source``: lip_conf.scp, lip_rel.scp or none).

Exact resume: ``t``, ``z`` and the global torch seed (dropout) of step ``s`` come from
``stable_hash(seed, ..., s, rank)``, the data of step ``s`` from
:class:`avse.train.dataset.StepSampler`, and the checkpoint holds the model, EMA and
optimiser states: a run stopped at step ``k`` and resumed reaches the same weights as
an uninterrupted one (bit for bit on the same machine and thread count).
"""
import csv
import logging
import math
import os
import time
from typing import Any, Dict, List

import torch
from tqdm import tqdm

from avse.dsp.stft import SpectralFrontEnd
from avse.errors import InputError, StageError
from avse.nets.storage import export_model
from avse.train import distributed as D
from avse.train.checkpoint import load_last_checkpoint, rng_states, save_checkpoint, set_rng_states
from avse.train.dataset import CropDataset, StepSampler, fixed_crops, make_loader, read_utterances
from avse.train.ema import EMA
from avse.train.objectives import objective_for
from avse.utils.fileio import atomic_open
from avse.utils.seeding import stable_hash

log = logging.getLogger("avse.train")

LOG_FIELDS = ["step", "train_loss", "valid_loss", "lr", "grad_norm", "seconds"]
# options that must not change when resuming (others, e.g. max_steps, may)
RESUME_KEYS = ("model", "model_conf", "sde", "sde_conf", "frontend_conf", "fs", "crop_frames",
               "batch_size", "optim", "optim_conf", "seed", "ema_decay", "ema_warmup",
               "lip_encoder", "lip_encoder_conf", "freeze_lip_encoder", "lip_rel_source", "lip_table",
               "init_model", "freeze_audio", "kl_weight", "envelope_nll")
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def step_noise(seed: int, step: int, rank: int, shape, objective, device) -> tuple:
    """The random draws of one step (drawn on CPU: the same numbers on every device),
    e.g. ``(t (B,), z (B, F, T) complex)`` of the DSM objective."""
    g = torch.Generator().manual_seed(stable_hash(seed, objective.name, step, rank))
    return tuple(d.to(device) for d in objective.draws(g, tuple(shape)))


class Trainer:
    """Builds everything from the resolved config ``cfg`` (a dict of the CLI options)."""

    def __init__(self, cfg: Dict[str, Any], info: D.DistInfo):
        self.cfg, self.info, self.dev = cfg, info, info.device
        self.out_dir = cfg["out_dir"]
        self.ckpt_dir = os.path.join(self.out_dir, "checkpoints")
        fe_conf = dict(cfg.get("frontend_conf") or {})
        fe = SpectralFrontEnd(**fe_conf)
        n_fft = fe.n_fft  # the shortest usable utterance
        self.objective = objective_for(cfg, fe.hop)
        utts = read_utterances(cfg["train_dir"], cfg["fs"], n_fft, "training")
        self.av = bool(cfg.get("lip_encoder"))
        self.train_set = self._dataset(cfg["train_dir"], utts, fe_conf, train=True)
        self.frontend_conf = self.train_set.frontend.config()
        self.valid, self.valid_cond = None, None
        if cfg.get("valid_dir") and info.is_main:
            vutts = read_utterances(cfg["valid_dir"], cfg["fs"], n_fft, "validation")
            vset = self._dataset(cfg["valid_dir"], vutts, fe_conf, train=False)
            x0 = fixed_crops(vset, cfg["valid_utts"], cfg["seed"])
            if self.av:
                x0, *vc = x0
                self.valid_cond = self._cond(vc)
            self.valid = x0.to(self.dev)
        torch.manual_seed(stable_hash(cfg["seed"], "init"))  # same initial weights on every rank
        self.model = self.objective.build_model()
        if self.objective.data_init:
            prep = fixed_crops(self.train_set, int(cfg.get("init_utts") or 64), stable_hash(cfg["seed"], "prepare"))
            self.objective.prepare(self.model, prep[0] if isinstance(prep, tuple) else prep)
        self.model = self.model.to(self.dev)
        if self.valid is not None:   # fixed draws of the validation crops (after the model: their shapes)
            self.valid = (self.valid, step_noise(cfg["seed"], "valid", 0, self.valid.shape, self.objective, self.dev))
        if cfg.get("init_model"):
            self._init_from_prior(cfg["init_model"])
        if self.av:
            self._init_lip_encoder()
        if cfg.get("freeze_audio"):
            self._freeze_audio()
        self.ema = EMA(self.model, cfg["ema_decay"], cfg["ema_warmup"])
        self.ddp = D.wrap(self.model, info)
        if cfg["optim"] not in OPTIMIZERS:
            raise InputError(f"unknown optim {cfg['optim']!r}; choose from: {', '.join(OPTIMIZERS)}")
        ocfg = {"lr": 1e-4, **(cfg.get("optim_conf") or {})}
        try:  # YAML reads 1e-4 (no dot) as a string
            for k in ("lr", "eps", "weight_decay"):
                if k in ocfg:
                    ocfg[k] = float(ocfg[k])
            if "betas" in ocfg:
                ocfg["betas"] = tuple(float(b) for b in ocfg["betas"])
            self.optim = OPTIMIZERS[cfg["optim"]]([p for p in self.model.parameters() if p.requires_grad],
                                                  **ocfg)
        except (TypeError, ValueError) as e:
            raise InputError(f"optim {cfg['optim']!r}: bad optim_conf {cfg.get('optim_conf')}: {e}") from e
        self.base_lr = float(ocfg["lr"])
        self.step, self.elapsed, self.rows = 0, 0.0, []
        self.amp = bool(cfg["use_amp"]) and self.dev.type == "cuda"
        n_par = sum(p.numel() for p in self.model.parameters())
        if info.is_main:
            log.info("model %s %s: %.2f M parameters; %d training utterances; device %s%s",
                     cfg["model"], cfg.get("model_conf"), n_par / 1e6, len(utts), self.dev,
                     " (bf16 autocast)" if self.amp else "")

    # ------------------------------------------------------ audio-visual
    def _dataset(self, data_dir: str, utts, fe_conf: dict, train: bool):
        """The crop dataset of ``data_dir``: audio-only, or with aligned lips (AV)."""
        if not self.av:
            return CropDataset(utts, fe_conf, self.cfg["crop_frames"], self.cfg["fs"])
        from avse.train.av_dataset import av_dataset_from_config

        return av_dataset_from_config(self.cfg, data_dir, utts, fe_conf, train)

    def _cond(self, fields) -> Dict[str, torch.Tensor]:
        """Model keyword arguments of an AV batch's ``(lips, mask, rel)`` fields."""
        lips, mask, rel = (f.to(self.dev, non_blocking=True) for f in fields)
        return {"cond": lips, "cond_mask": mask, "cond_rel": rel}

    def _init_lip_encoder(self) -> None:
        """Load ``lip_encoder_init`` (if given) and freeze the encoder if asked."""
        from avse.train.lip_init import init_lip_encoder

        init_lip_encoder(self.model.cond_encoder, self.cfg["lip_encoder"], self.cfg.get("lip_encoder_init"),
                         bool(self.cfg.get("freeze_lip_encoder")), self.cfg.get("lip_encoder_init_format") or "auto",
                         log if self.info.is_main else None)

    def _init_from_prior(self, path: str) -> None:
        """Load the weights of the prior ``path`` (model file or training checkpoint)
        into the matching part of the model, e.g. an audio-only prior under an
        audio-visual one (whose lip encoder and fusion modules stay new; the fusion
        outputs start at zero, so the model starts as the audio-only prior)."""
        from avse.nets.storage import load_model

        src = load_model(path, channels_last=False)
        why = self.objective.check_init_model(src.meta)
        if src.frontend.config() != self.frontend_conf:
            why = f"its front-end or SDE differs from this training config ({src.frontend.config()})"
        if why:
            raise InputError(f"init_model {path}: {why}")
        own, weights = self.model.state_dict(), src.model.state_dict()
        bad = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
        if bad:
            raise InputError(f"init_model {path}: weights do not fit this model: {bad[:3]}")
        self.model.load_state_dict(weights, strict=False)
        new = sorted({".".join(k.split(".")[:2]) for k in own if k not in weights})
        if self.info.is_main:
            log.info("initialised %d of %d tensors from %s; new: %s", len(weights), len(own), path,
                     ", ".join(new) or "none")

    def _freeze_audio(self) -> None:
        """Train only the visual conditioning: the lip encoder, the fusion modules and the
        lip-variance head (if any)."""
        keep = {id(p) for m in (self.model.cond_encoder, getattr(self.model.backbone, "fusions", None),
                                getattr(self.model, "lip_variance", None))
                if m is not None for p in m.parameters()}
        for p in self.model.parameters():
            if id(p) not in keep:
                p.requires_grad_(False)

    # ------------------------------------------------------------ state
    def export_info(self) -> Dict[str, Any]:
        return {**self.objective.export_info(self.model), "frontend": self.frontend_conf,
                "fs": int(self.cfg["fs"]), "version": 1}

    def state_dict(self) -> Dict[str, Any]:
        return {"step": self.step, "epoch": self.sampler_epoch(self.step), "elapsed": self.elapsed,
                "model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optim.state_dict(), "rng": rng_states(),
                "config": {k: v for k, v in self.cfg.items()}, "export": self.export_info()}

    def load_state_dict(self, st: Dict[str, Any]) -> None:
        old = st.get("config", {})
        diff = [k for k in RESUME_KEYS if k in old and old[k] != self.cfg.get(k)]
        if diff:
            raise StageError(f"{self.out_dir}: cannot resume, the config changed in {diff}; "
                             "remove the directory (or use another --out_dir) to train again")
        self.model.load_state_dict(st["model"])
        self.ema.load_state_dict(st["ema"])
        self.optim.load_state_dict(st["optimizer"])
        self.step, self.elapsed = int(st["step"]), float(st.get("elapsed", 0.0))
        set_rng_states(st["rng"])

    def sampler_epoch(self, step: int) -> float:
        return step * self.info.world_size * self.cfg["batch_size"] / len(self.train_set)

    # ------------------------------------------------------------- steps
    def autocast(self):
        return torch.autocast(device_type=self.dev.type, dtype=torch.bfloat16, enabled=self.amp)

    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based): linear warm-up over ``warmup_steps``,
        then ``constant`` or ``cosine`` decay to ``min_lr_ratio * lr`` at ``max_steps``."""
        w = int(self.cfg.get("warmup_steps") or 0)
        if w > 0 and step < w:
            return self.base_lr * (step + 1) / w
        if self.cfg.get("lr_schedule", "constant") == "cosine":
            span = max(1, int(self.cfg["max_steps"]) - w)
            frac = min(1.0, (step - w) / span)
            floor = float(self.cfg.get("min_lr_ratio") or 0.0)
            return self.base_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))
        return self.base_lr

    def train_step(self, x0: torch.Tensor, cond: Dict[str, torch.Tensor] | None = None) -> tuple[float, float]:
        """One optimiser step on the batch ``x0`` (B, F, T) (with the AV conditioning
        ``cond``); returns (loss, grad norm)."""
        cfg, s = self.cfg, self.step
        torch.manual_seed(stable_hash(cfg["seed"], "global", s, self.info.rank))
        draws = step_noise(cfg["seed"], s, self.info.rank, x0.shape, self.objective, self.dev)
        lr = self.lr_at(s)
        for g in self.optim.param_groups:
            g["lr"] = lr
        self.ddp.train()
        self.optim.zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.objective.loss(self.ddp, x0, draws, cond)
        loss.backward()
        clip = cfg.get("grad_clip")
        params = [p for p in self.model.parameters() if p.grad is not None]
        if clip:
            gnorm = torch.nn.utils.clip_grad_norm_(params, float(clip))
        else:
            gnorm = torch.linalg.vector_norm(torch.stack([p.grad.detach().norm() for p in params]))
        lval, gval = float(loss.detach()), float(gnorm)
        if math.isfinite(lval) and math.isfinite(gval):
            self.optim.step()
            self.ema.update(self.model)
        self.step += 1
        return lval, gval

    @torch.no_grad()
    def validate(self) -> float:
        """Loss of the EMA model on the fixed validation crops and draws."""
        x0, draws = self.valid
        bs = int(self.cfg.get("valid_batch_size") or self.cfg["batch_size"])
        total, n = 0.0, 0
        for i in range(0, len(x0), bs):
            cond = None if self.valid_cond is None else {k: v[i:i + bs] for k, v in self.valid_cond.items()}
            with self.autocast():
                l = self.objective.loss(self.ema.module, x0[i:i + bs], tuple(d[i:i + bs] for d in draws), cond)
            total += float(l) * len(x0[i:i + bs])
            n += len(x0[i:i + bs])
        return total / n

    # -------------------------------------------------------------- run
    def resume(self) -> None:
        st = load_last_checkpoint(self.ckpt_dir, map_location=self.dev)
        if st is None:
            if self.info.is_main:
                log.info("no checkpoint in %s: starting from scratch", self.ckpt_dir)
            return
        self.load_state_dict(st)
        self.rows = [r for r in read_log(os.path.join(self.out_dir, "train_log.csv"))
                     if int(r["step"]) <= self.step]
        if self.info.is_main:
            log.info("resumed from %s at step %d (epoch %.2f)", st["path"], self.step, st.get("epoch", 0.0))

    def save(self, final: bool = False) -> None:
        if not self.info.is_main:
            return
        save_checkpoint(self.ckpt_dir, self.state_dict(), keep=self.cfg["keep_checkpoints"])
        write_log(os.path.join(self.out_dir, "train_log.csv"), self.rows)
        plot_log(self.rows, os.path.join(self.out_dir, "loss.png"), self.objective.loss_label)
        if final:
            ex = self.export_info()
            export_model(os.path.join(self.out_dir, "model.pt"), ex, self.ema.module.state_dict(), self.step, self.cfg)

    def run(self) -> None:
        cfg, info = self.cfg, self.info
        max_steps = int(cfg["max_steps"])
        if self.step >= max_steps:
            log.info("already at step %d >= max_steps %d", self.step, max_steps)
            self.save(final=True)
            return
        sampler = StepSampler(len(self.train_set), cfg["batch_size"], cfg["seed"], info.rank,
                              info.world_size, start_step=self.step)
        loader = make_loader(self.train_set, sampler, cfg["num_workers"], pin_memory=self.dev.type == "cuda")
        acc = [0.0, 0.0, 0]
        bad = 0
        t0 = time.time() - self.elapsed
        bar = tqdm(total=max_steps, initial=self.step, disable=not (cfg["progress"] and info.is_main),
                   desc="train", unit="step", dynamic_ncols=True)
        for batch in loader:
            if self.av:
                spec, *fields = batch
                loss, gnorm = self.train_step(spec.to(self.dev, non_blocking=True), self._cond(fields))
            else:
                loss, gnorm = self.train_step(batch.to(self.dev, non_blocking=True))
            bar.update(1)
            if not (math.isfinite(loss) and math.isfinite(gnorm)):
                bad += 1
                log.warning("step %d: non-finite loss %s / grad norm %s; update skipped", self.step, loss, gnorm)
                if bad >= 20:
                    raise StageError(f"{bad} consecutive non-finite losses at step {self.step}; "
                                     "lower the learning rate or check the data")
                continue
            bad = 0
            acc = [acc[0] + loss, acc[1] + gnorm, acc[2] + 1]
            s = self.step
            do_log = s % cfg["log_interval"] == 0 or s == max_steps
            # the same decision on every rank (the all-reduce below is collective)
            do_valid = bool(cfg.get("valid_dir")) and (s % cfg["valid_interval"] == 0 or s == max_steps)
            if do_log or do_valid:
                self.elapsed = time.time() - t0
                tl, gn = D.mean_over_ranks([acc[0] / max(1, acc[2]), acc[1] / max(1, acc[2])], info)
                row = {"step": s, "train_loss": f"{tl:.6f}", "valid_loss": "",
                       "lr": f"{self.lr_at(s - 1):.3g}", "grad_norm": f"{gn:.4f}", "seconds": f"{self.elapsed:.1f}"}
                if do_valid and self.valid is not None:
                    row["valid_loss"] = f"{self.validate():.6f}"
                acc = [0.0, 0.0, 0]
                if info.is_main:
                    self.rows.append(row)
                    bar.set_postfix(loss=row["train_loss"], valid=row["valid_loss"] or "-")
                    log.info("step %d: train loss %s, valid loss %s, lr %s, grad norm %s, %s s", s,
                             row["train_loss"], row["valid_loss"] or "-", row["lr"], row["grad_norm"], row["seconds"])
                    write_log(os.path.join(self.out_dir, "train_log.csv"), self.rows)
            if s % cfg["ckpt_interval"] == 0 or s == max_steps:
                self.elapsed = time.time() - t0
                self.save(final=s == max_steps)
            if s >= max_steps:
                break
        bar.close()
        D.barrier(info)


def read_log(path: str) -> List[Dict[str, str]]:
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_log(path: str, rows: List[Dict[str, Any]]) -> None:
    """Write the training log (columns :data:`LOG_FIELDS`) atomically."""
    with atomic_open(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)


def plot_log(rows: List[Dict[str, Any]], path: str, label: str = "loss") -> None:
    """Training and validation loss against step (log scale), with matplotlib Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from avse.utils.fileio import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    tr = [(int(r["step"]), float(r["train_loss"])) for r in rows if r.get("train_loss") not in ("", None)]
    va = [(int(r["step"]), float(r["valid_loss"])) for r in rows if r.get("valid_loss") not in ("", None)]
    if tr:
        ax.plot(*zip(*tr), label="train")
    if va:
        ax.plot(*zip(*va), "o-", label="valid (EMA)")
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    if tr or va:
        ax.set_yscale("log")
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
