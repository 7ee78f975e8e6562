"""Training of the contrastive noise embedding and its NMF-basis decoder.

Three phases (the third optional), all on batches holding one item of every noise type
(so the InfoNCE negatives are always other types):

1. contrastive (``steps``): per type a random ``clip_seconds`` crop of a random noise
   recording, a paraphrased description (:func:`avse.corpus.synthetic.noise_text.describe`)
   and a freshly rendered scene picture (:func:`avse.corpus.synthetic.scenes.render_scene`),
   plus, with external features (``ext``), a random one of that type; the loss is the
   mean symmetric InfoNCE (:func:`avse.nets.noise_embed.info_nce`) over the pairs
   audio-text, image-text, audio-image (and ext-text, ext-audio).
2. decoder (``decoder_steps``; encoders frozen): the embedding of ``decoder_modality``
   (text by default: the decoder never sees an image or a clip) predicts bases ``W``;
   activations ``H`` are fitted to the power spectrogram ``V`` of a noise crop by
   ``decoder_h_iters`` unrolled IS multiplicative updates (:func:`avse.enhance.nmf.update_H`);
   the loss is the Itakura-Saito divergence ``D(V | W H)`` per bin, i.e. the bases
   that let an NMF with free activations explain that noise type best — the
   quantity the embedding-conditioned noise model needs (Nortier et al., ICASSP 2024
   use IS-NMF as UDiffSE's noise model).

3. discriminative decoder (``disc_steps``, with clean speech: ``NoiseItems(speech=...)``,
   ``--speech_dir`` of :mod:`avse.bin.train_noise_embed`; discriminative NMF: Weninger,
   Le Roux, Hershey, Schuller, GlobalSIP 2014): the decoder of phase 2 is fine-tuned
   with the activations fitted as the enhancer fits them, to the power of the noise
   crop *plus* a speech crop at a random SNR in ``snr_range`` (dB), with the robust
   clipped updates (``clip``, :class:`avse.enhance.nmf.NMF`), while the loss is still
   the divergence from the power of the noise alone. Bases that could also explain
   speech raise the loss, so the decoder learns bases of the noise type that speech
   cannot borrow. It starts from phase 2's bases: from random bases the clipped fit
   leaves bins far below the noise and the IS loss explodes.
"""
from __future__ import annotations

import logging
import math
from typing import Dict, List

import numpy as np
import torch

from avse.corpus.synthetic.noise_text import describe
from avse.corpus.synthetic.scenes import image_to_tensor_layout, render_scene
from avse.enhance.nmf import FLOOR, clipped, is_divergence, update_H
from avse.errors import InputError
from avse.nets.noise_embed import NoiseEmbedModel, info_nce
from avse.nets.noise_tokenizer import Tokenizer

log = logging.getLogger("avse.noise_embed")


def crop(x: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """A random crop of ``n`` samples of ``x`` (N,), looped first if shorter."""
    if len(x) < n:
        x = np.tile(x, n // len(x) + 1)
    a = int(rng.integers(0, len(x) - n + 1))
    return x[a:a + n]


class NoiseItems:
    """Noise recordings by type, and random items of every modality.

    ``audio[t]``: list of float32 recordings of type ``t``; ``ext[t]``: optional list
    of external feature vectors. ``clip(t, rng, n)``: a crop of ``n`` samples (looped
    if a recording is shorter). ``speech``: optional clean-speech recordings (float32, same
    rate) for the discriminative decoder phase, added at an SNR drawn uniformly from
    ``snr_range`` (dB; :meth:`speech_like`).
    """

    def __init__(self, audio: Dict[str, List[np.ndarray]], ext: Dict[str, List[np.ndarray]] | None = None,
                 image_size: int = 64, speech: List[np.ndarray] | None = None,
                 snr_range: tuple = (-5.0, 5.0)):
        self.audio = {t: v for t, v in audio.items() if v}
        if len(self.audio) < 2:
            raise InputError("noise embedding: need recordings of at least two noise types")
        self.types = sorted(self.audio)
        self.ext = ext or {}
        missing = [t for t in self.types if self.ext and not self.ext.get(t)]
        if missing:
            raise InputError(f"external features: none of type(s) {missing}")
        self.image_size = int(image_size)
        self.speech = [x for x in (speech or []) if len(x)]
        lo, hi = (float(v) for v in snr_range)
        if not lo <= hi:
            raise InputError(f"noise embedding: snr_range must be [low, high] dB, got {snr_range}")
        self.snr_range = (lo, hi)

    def speech_like(self, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A clean-speech crop as long as ``noise`` (N,), scaled to a random SNR in
        :attr:`snr_range` against it (looped if shorter; zeros without speech)."""
        if not self.speech:
            return np.zeros_like(noise)
        x = crop(self.speech[int(rng.integers(len(self.speech)))], rng, len(noise))
        snr = rng.uniform(*self.snr_range)
        gain = np.sqrt(np.mean(noise ** 2) / max(float(np.mean(x ** 2)), 1e-12) * 10 ** (snr / 10))
        return (gain * x).astype(noise.dtype)

    def clip(self, t: str, rng: np.random.Generator, n: int) -> np.ndarray:
        recs = self.audio[t]
        return crop(recs[int(rng.integers(len(recs)))], rng, n)

    def batch(self, types, rng: np.random.Generator, n: int, tok: Tokenizer, speech: bool = False) -> dict:
        """One item of every modality per type; with ``speech`` (and speech given) also
        ``"speech"``: a speech crop per noise crop (:meth:`speech_like`)."""
        out = {"audio": torch.from_numpy(np.stack([self.clip(t, rng, n) for t in types])).float(),
               "text": tok.encode([describe(t, rng) for t in types]),
               "image": torch.from_numpy(np.stack([image_to_tensor_layout(
                   render_scene(t, rng, self.image_size)) for t in types]))}
        if speech and self.speech:
            out["speech"] = torch.from_numpy(np.stack([self.speech_like(a, rng) for a in out["audio"].numpy()]))
        if self.ext:
            out["ext"] = torch.from_numpy(np.stack([self.ext[t][int(rng.integers(len(self.ext[t])))]
                                                    for t in types])).float()
        return out


PAIRS = (("audio", "text"), ("image", "text"), ("audio", "image"))
EXT_PAIRS = (("ext", "text"), ("ext", "audio"))


def contrastive_loss(model: NoiseEmbedModel, batch: dict) -> tuple[torch.Tensor, dict]:
    emb = {m: model.encode(m, x) for m, x in batch.items()}
    pairs = PAIRS + (EXT_PAIRS if "ext" in emb else ())
    parts = {f"{a}-{b}": info_nce(emb[a], emb[b], model.scale()) for a, b in pairs}
    return sum(parts.values()) / len(parts), {k: float(v.detach()) for k, v in parts.items()}


def power_spec(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``(B, N)`` -> ``|STFT|^2`` ``(B, n_fft // 2 + 1, T)`` (Hann window)."""
    X = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, device=x.device), return_complex=True)
    return X.abs().pow(2).clamp_min(FLOOR)


def fit_activations(V: torch.Tensor, W: torch.Tensor, iters: int, gamma: float = 1.0,
                    clip: float | None = None) -> torch.Tensor:
    """IS activations ``H`` (B, K, T) of ``V`` (B, F, T) with bases ``W`` (B, F, K) fixed:
    ``iters`` multiplicative updates from a flat start at the mean power (differentiable);
    with ``clip``, each update fits ``min(V, clip W H)`` (the robust updates of
    :class:`avse.enhance.nmf.NMF`)."""
    H = V.mean(dim=(1, 2), keepdim=True).expand(-1, W.shape[-1], V.shape[-1]).clone()
    for _ in range(int(iters)):
        H = update_H(V if clip is None else clipped(V, W @ H, clip), W, H, gamma)
    return H


def decoder_loss(model: NoiseEmbedModel, batch: dict, modality: str, n_fft: int, hop: int,
                 h_iters: int, clip: float | None = None) -> torch.Tensor:
    """Mean IS divergence per time-frequency bin of the noise crops' power spectrograms,
    the activations fitted to them or, with ``batch["speech"]``, to noise plus speech
    (module docstring)."""
    with torch.no_grad():
        e = model.encode(modality, batch[modality])
    V = power_spec(batch["audio"], n_fft, hop)
    fit = V if "speech" not in batch else power_spec(batch["audio"] + batch["speech"], n_fft, hop)
    norm = fit.mean(dim=(1, 2), keepdim=True)
    V, fit = V / norm, fit / norm
    W = model.decoder(e).clamp_min(1e-8)
    H = fit_activations(fit, W, h_iters, clip=clip)
    return is_divergence(V, W @ H).mean() / (V.shape[1] * V.shape[2])


def train(model: NoiseEmbedModel, items: NoiseItems, tok: Tokenizer, rng: np.random.Generator, steps: int,
          decoder_steps: int, clip_samples: int, lr: float, decoder_modality: str, n_fft: int, hop: int,
          h_iters: int, log_every: int = 50, on_log=None, disc_steps: int = 0, clip: float | None = None) -> None:
    """The phases (module docstring), in place; ``on_log(row)`` gets a dict every ``log_every`` steps."""
    if decoder_modality == "ext" and not items.ext:
        raise InputError("decoder_modality ext needs external features (--embed_scp)")
    if int(disc_steps) > 0 and not items.speech:
        raise InputError("the discriminative decoder phase (disc_steps > 0) needs clean speech (--speech_dir)")
    enc_params = [p for n, p in model.named_parameters() if not n.startswith("decoder.")]
    opt = torch.optim.AdamW(enc_params, lr=lr, weight_decay=1e-4)
    model.train()
    for step in range(1, int(steps) + 1):  # (steps 0: encoders kept as they are)
        lr_now = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr_now
        types = [items.types[i] for i in rng.permutation(len(items.types))]
        loss, parts = contrastive_loss(model, items.batch(types, rng, clip_samples, tok))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if on_log and (step % log_every == 0 or step == steps):
            on_log({"phase": "contrastive", "step": step, "loss": float(loss.detach()),
                    "temperature": 1.0 / float(model.scale().detach()), **parts})
    for phase, n_steps, disc in (("decoder", decoder_steps, False), ("decoder_disc", disc_steps, True)):
        opt = torch.optim.AdamW(model.decoder.parameters(), lr=lr, weight_decay=1e-4)
        for step in range(1, int(n_steps) + 1):
            batch = items.batch(items.types, rng, clip_samples, tok, speech=disc)
            loss = decoder_loss(model, batch, decoder_modality, n_fft, hop, h_iters, clip=clip if disc else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if on_log and (step % log_every == 0 or step == n_steps):
                on_log({"phase": phase, "step": step, "loss": float(loss.detach())})
    model.eval()
