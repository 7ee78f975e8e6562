"""Training of the noise tracker (:class:`avse.nets.noise_tracker.NoiseTracker`).

Each step draws ``batch`` mixtures of ``seconds``: a crop of clean training speech,
made reverberant with probability ``reverb_prob`` (:func:`synthetic_rir`), plus a crop
of a training noise recording of a random type at an SNR drawn uniformly from
``snr_range`` (dB, against the speech as it is in the mixture); with probability
``noise_aug`` the noise is a new instance of its type made from the recordings
(:meth:`MixtureSampler.new_instance`), against overfitting a few recordings per type. The loss is the
Gaussian negative log-likelihood of the true noise STFT under the predicted variance
(:func:`avse.nets.noise_tracker.is_nll`): the maximum-likelihood noise variance of the
mixture, whose optimum is the conditional mean of ``|N|^2`` given the mixture. A
reverberant speech image counts as speech, so the tracker leaves reverberation to a
dereverberation step (the cascade of ``conf/enhance_udiffse_plus_wpe.yaml``).

With a noise-embedding model (:mod:`avse.nets.noise_embedder`), every item is
conditioned on the embedding of a random description of its noise type in
``modality`` (text by default, so that images and clips at test time are cross-modal
uses), replaced by the null condition with probability ``drop_prob``.
"""
from __future__ import annotations

import math
from typing import Dict, List

import numpy as np
import torch
from scipy.signal import fftconvolve

from avse.errors import InputError
from avse.nets.noise_tracker import NoiseTracker, is_nll, log_power
from avse.train.noise_embed import crop


def synthetic_rir(rng: np.random.Generator, fs: int, t60: float, drr_db: float) -> np.ndarray:
    """A room impulse response after Polack's model: a unit direct path, then from 2.5 ms
    on white Gaussian noise whose energy decays by 60 dB in ``t60`` seconds (amplitude
    ``exp(-6.9 t / t60)``), scaled to a direct-to-reverberant ratio ``drr_db`` (dB).
    ``(N,)`` float32, ``N = 1.2 t60 fs``."""
    n = max(int(1.2 * t60 * fs), 64)
    t = np.arange(n) / fs
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / t60)
    tail[: int(0.0025 * fs)] = 0.0
    tail *= math.sqrt(10 ** (-drr_db / 10) / max(float(np.sum(tail ** 2)), 1e-12))
    tail[0] += 1.0
    return tail.astype(np.float32)


class MixtureSampler:
    """Random training mixtures (module docstring).

    ``speech``: clean recordings (float32, ``fs``); ``noise[t]``: recordings of type
    ``t``; ``emb[t]``: (n_t, D) embeddings of type ``t`` or None (unconditioned).
    """

    def __init__(self, speech: List[np.ndarray], noise: Dict[str, List[np.ndarray]], fs: int,
                 snr_range=(-7.0, 12.0), reverb_prob: float = 0.0, t60_range=(0.2, 1.0),
                 drr_range=(-3.0, 10.0), emb: Dict[str, torch.Tensor] | None = None, noise_aug: float = 0.0):
        self.noise = {t: v for t, v in noise.items() if v}
        if not speech or not self.noise:
            raise InputError("noise tracker: need clean speech and noise recordings")
        if emb is not None and not set(self.noise) <= set(emb):
            raise InputError(f"noise tracker: no embedding for noise type(s) {sorted(set(self.noise) - set(emb))}")
        if not (len(snr_range) == 2 and float(snr_range[0]) <= float(snr_range[1])):
            raise InputError(f"noise tracker: the SNR range must be [low, high] in dB, got {snr_range!r}")
        for name, v in (("reverb_prob", reverb_prob), ("noise_aug", noise_aug)):
            if not 0.0 <= float(v) <= 1.0:
                raise InputError(f"noise tracker: {name} must be in [0, 1], got {v}")
        self.speech, self.types, self.fs = speech, sorted(self.noise), int(fs)
        self.snr_range, self.reverb_prob = tuple(map(float, snr_range)), float(reverb_prob)
        self.t60_range, self.drr_range, self.emb = tuple(t60_range), tuple(drr_range), emb
        self.noise_aug = float(noise_aug)

    def item(self, rng: np.random.Generator, n: int) -> tuple:
        """``(speech image, noise, type)``, each (n,) float32."""
        s = crop(self.speech[int(rng.integers(len(self.speech)))], rng, n)
        if rng.random() < self.reverb_prob:
            h = synthetic_rir(rng, self.fs, rng.uniform(*self.t60_range), rng.uniform(*self.drr_range))
            s = fftconvolve(s, h)[:n].astype(np.float32)
        t = self.types[int(rng.integers(len(self.types)))]
        if self.noise_aug and rng.random() < self.noise_aug:
            v = self.new_instance(t, rng, n)
        else:
            v = crop(self.noise[t][int(rng.integers(len(self.noise[t])))], rng, n)
        snr = rng.uniform(*self.snr_range)
        g = math.sqrt(float(np.mean(s ** 2)) / max(float(np.mean(v ** 2)), 1e-12) / 10 ** (snr / 10))
        return s, (g * v).astype(np.float32), t

    def new_instance(self, t: str, rng: np.random.Generator, n: int) -> np.ndarray:
        """A noise of type ``t`` unlike any one recording (``noise_aug``): two random
        recordings of the type mixed with random weights, played at a random speed
        (0.8-1.25, which moves its spectrum and its time course) and tilted by a random
        first-order filter ``1 - b z^-1``, ``|b| <= 0.6``. (n,) float32."""
        recs = self.noise[t]
        speed = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
        m = int(np.ceil(n * speed)) + 1
        a, b = (crop(recs[int(rng.integers(len(recs)))], rng, m) for _ in range(2))
        w = rng.uniform(0.0, 1.0)
        x = w * a / max(float(np.std(a)), 1e-8) + (1 - w) * b / max(float(np.std(b)), 1e-8)
        x = np.interp(np.arange(n) * speed, np.arange(m), x)
        tilt = rng.uniform(-0.6, 0.6)
        x = np.concatenate([x[:1], x[1:] - tilt * x[:-1]])
        return x.astype(np.float32)

    def batch(self, rng: np.random.Generator, size: int, n: int) -> dict:
        """``mix``, ``noise`` (B, n) and ``cond`` (B, D) or None."""
        items = [self.item(rng, n) for _ in range(int(size))]
        s = torch.from_numpy(np.stack([i[0] for i in items]))
        v = torch.from_numpy(np.stack([i[1] for i in items]))
        cond = None
        if self.emb is not None:
            cond = torch.stack([self.emb[i[2]][int(rng.integers(len(self.emb[i[2]])))] for i in items])
        return {"mix": s + v, "noise": v, "cond": cond}


def tracker_loss(model: NoiseTracker, frontend, batch: dict, drop: torch.Tensor | None) -> torch.Tensor:
    """:func:`is_nll` of the true noise power under the tracked variance."""
    logp = log_power(frontend.stft(batch["mix"]))
    P = frontend.stft(batch["noise"]).abs().pow(2)
    return is_nll(P, model(logp, batch["cond"], drop))


def train(model: NoiseTracker, frontend, sampler: MixtureSampler, rng: np.random.Generator, steps: int,
          batch_size: int, n_samples: int, lr: float, drop_prob: float = 0.2, log_every: int = 50,
          on_log=None, valid: dict | None = None) -> None:
    """Adam with a cosine learning-rate decay, in place; ``on_log(row)`` every ``log_every``
    steps gets the training loss (mean since the last row) and, with ``valid`` (a fixed
    :meth:`MixtureSampler.batch`), the validation loss with and without the condition."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run, count = 0.0, 0
    for step in range(1, int(steps) + 1):
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        model.train()
        batch = sampler.batch(rng, batch_size, n_samples)
        drop = None
        if batch["cond"] is not None:
            drop = torch.from_numpy(rng.random(batch_size) < drop_prob)
        loss = tracker_loss(model, frontend, batch, drop)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        run, count = run + float(loss.detach()), count + 1
        if on_log and (step % log_every == 0 or step == steps):
            row = {"step": step, "loss": run / count}
            run, count = 0.0, 0
            if valid is not None:
                model.eval()
                with torch.no_grad():
                    row["valid"] = float(tracker_loss(model, frontend, valid, None))
                    if valid["cond"] is not None:
                        off = torch.ones(len(valid["mix"]), dtype=torch.bool)
                        row["valid_nocond"] = float(tracker_loss(model, frontend, valid, off))
            on_log(row)
    model.eval()
