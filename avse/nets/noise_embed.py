"""A contrastive embedding shared by noise audio, scene text and scene pictures.

In the manner of CLIP (Radford et al., "Learning transferable visual models from natural
language supervision", ICML 2021) and CLAP (Elizalde et al., "CLAP: learning audio
concepts from natural language supervision", ICASSP 2023): one encoder per modality,
each ending in a projection to a ``dim``-dimensional unit sphere, trained with a
symmetric InfoNCE loss between the modalities and a learned temperature, so that a
noise recording, a sentence about its scene and a picture of it land close together.

* audio (:class:`AudioEncoder`): log-mel spectrogram (``n_mels`` bands, level removed:
  the mean log power is subtracted) of a noise clip ``(B, N)`` at ``fs`` -> two 1-D
  convolutions over time -> mean and standard deviation over time -> MLP.
* text (:class:`TextEncoder`): sentencepiece ids (:mod:`avse.nets.noise_tokenizer`) ->
  mean of learned sub-word embeddings -> MLP.
* image (:class:`ImageEncoder`): ``(B, 3, H, W)`` in [-1, 1] -> three strided
  convolutions -> global average -> linear.
* external (:class:`ExternalEncoder`, optional, ``ext_dim > 0``): features computed
  elsewhere (e.g. CLIP image or CLAP audio embeddings of a real corpus, listed in an
  scp) -> MLP into the same space.

:class:`BasisDecoder` maps an embedding to ``K`` non-negative noise spectral patterns
``W`` (F, K) with unit column sums: the NMF bases of the embedding-conditioned noise
model (:mod:`avse.enhance.embed_noise`). It is trained on the embeddings of one
modality (``decoder_modality``, text by default), but because the space is shared it
takes an embedding of any modality at test time.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from avse.errors import InputError

MODALITIES = ("audio", "text", "image", "ext")


def mel_filterbank(n_fft: int, n_mels: int, fs: int, f_min: float = 40.0) -> torch.Tensor:
    """Triangular mel filters (n_mels, n_fft // 2 + 1) on the HTK mel scale."""
    mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # noqa: E731
    pts = torch.linspace(mel(f_min), mel(fs / 2), n_mels + 2)
    hz = 700.0 * (10 ** (pts / 2595.0) - 1.0)
    freqs = torch.linspace(0, fs / 2, n_fft // 2 + 1)
    lo, c, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None] - lo) / (c - lo).clamp_min(1e-6)
    down = (hi - freqs[None]) / (hi - c).clamp_min(1e-6)
    return torch.clamp(torch.minimum(up, down), min=0.0)


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class AudioEncoder(nn.Module):
    """Noise clip ``(B, N)`` -> ``(B, dim)`` (not normalised)."""

    def __init__(self, dim: int, fs: int = 16000, n_fft: int = 512, hop: int = 256, n_mels: int = 48,
                 hidden: int = 128):
        super().__init__()
        self.n_fft, self.hop = int(n_fft), int(hop)
        self.register_buffer("mel", mel_filterbank(n_fft, n_mels, fs), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.conv = nn.Sequential(nn.Conv1d(n_mels, hidden, 3, padding=1), nn.GELU(),
                                  nn.Conv1d(hidden, hidden, 3, padding=1, stride=2), nn.GELU())
        self.head = _mlp(2 * hidden, hidden, dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Level-free log-mel ``(B, n_mels, T)``."""
        if x.dim() != 2 or x.shape[1] < self.n_fft:
            raise InputError(f"audio encoder: need (B, N) clips of at least {self.n_fft} samples, "
                             f"got {tuple(x.shape)}")
        X = torch.stft(x, self.n_fft, self.hop, window=self.window, return_complex=True)
        lm = torch.log(self.mel @ X.abs().pow(2) + 1e-8)
        return lm - lm.mean(dim=(1, 2), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(self.features(x))
        return self.head(torch.cat([h.mean(-1), h.std(-1)], dim=-1))


class TextEncoder(nn.Module):
    """Padded token ids ``(B, L)`` (pad = -1) -> ``(B, dim)``."""

    def __init__(self, dim: int, vocab_size: int, hidden: int = 128):
        super().__init__()
        self.emb = nn.EmbeddingBag(int(vocab_size), hidden, mode="mean")
        self.head = _mlp(hidden, hidden, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids >= 0
        flat = ids[mask]
        offsets = torch.cat([torch.zeros(1, dtype=torch.long, device=ids.device), mask.sum(1).cumsum(0)[:-1]])
        return self.head(self.emb(flat, offsets))


class ImageEncoder(nn.Module):
    """Scene pictures ``(B, 3, H, W)`` in [-1, 1] -> ``(B, dim)``."""

    def __init__(self, dim: int, hidden: int = 32):
        super().__init__()
        c = int(hidden)
        self.conv = nn.Sequential(nn.Conv2d(3, c, 5, 2, 2), nn.GELU(), nn.Conv2d(c, 2 * c, 3, 2, 1), nn.GELU(),
                                  nn.Conv2d(2 * c, 4 * c, 3, 2, 1), nn.GELU())
        self.head = nn.Linear(4 * c, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).mean(dim=(-2, -1)))


class ExternalEncoder(nn.Module):
    """Features computed elsewhere ``(B, ext_dim)`` -> ``(B, dim)``."""

    def __init__(self, dim: int, ext_dim: int, hidden: int = 128):
        super().__init__()
        self.head = _mlp(int(ext_dim), hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


class BasisDecoder(nn.Module):
    """Embedding ``(B, dim)`` -> NMF noise bases ``W`` ``(B, F, K)``, columns summing to 1."""

    def __init__(self, dim: int, n_freq: int, rank: int, hidden: int = 256):
        super().__init__()
        self.n_freq, self.rank = int(n_freq), int(rank)
        self.net = _mlp(dim, hidden, self.n_freq * self.rank)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        logits = self.net(e).view(-1, self.n_freq, self.rank)
        return torch.softmax(logits, dim=1)


class NoiseEmbedModel(nn.Module):
    """The encoders, the temperature and the basis decoder (module docstring).

    ``encode(modality, x)`` -> unit-norm ``(B, dim)``; ``logit_scale`` (a scalar
    parameter, ``exp`` of it multiplies cosine similarities; CLIP's clamp at 100).
    """

    def __init__(self, dim: int = 64, vocab_size: int = 256, fs: int = 16000, ext_dim: int = 0,
                 decoder_n_fft: int = 510, decoder_rank: int = 8, audio_conf: dict | None = None,
                 hidden: int = 128):
        super().__init__()
        self.dim = int(dim)
        self.audio = AudioEncoder(dim, fs=fs, hidden=hidden, **(audio_conf or {}))
        self.text = TextEncoder(dim, vocab_size, hidden)
        self.image = ImageEncoder(dim)
        self.ext = ExternalEncoder(dim, ext_dim, hidden) if int(ext_dim) > 0 else None
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.decoder = BasisDecoder(dim, decoder_n_fft // 2 + 1, decoder_rank)

    def encode(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        if modality not in MODALITIES:
            raise InputError(f"unknown modality {modality!r}; choose from {MODALITIES}")
        enc = getattr(self, modality)
        if enc is None:
            raise InputError("this noise-embedding model has no external-feature encoder (trained without "
                             "--embed_scp)")
        return F.normalize(enc(x), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=100.0)


def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of matched rows of unit-norm ``a``, ``b`` (B, D): the mean of the
    cross-entropies of ``scale * a b^T`` over rows and over columns, targets the diagonal."""
    logits = scale * a @ b.t()
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
