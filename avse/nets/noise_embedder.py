"""The trained noise-embedding model at inference: loading, encoding, retrieval.

``NoiseEmbedder.load(path, device)`` reads the file written by
``python -m avse.bin.train_noise_embed`` (:func:`save_noise_embed`): the network of
:mod:`avse.nets.noise_embed`, its sentencepiece tokenizer and the settings. Then::

    emb.texts(["rain on a roof"])       # (B, D) unit-norm
    emb.images(uint8 (B, H, W, 3))      # (B, D)
    emb.clips(float32 (B, N) at emb.fs) # (B, D)
    emb.external(float32 (B, ext_dim))  # (B, D): CLIP/CLAP features computed elsewhere
    emb.bases(e)                        # (B, F, K): NMF noise bases, unit column sums

:func:`retrieval_top1` measures cross-modal top-1 retrieval among noise types.
"""
from __future__ import annotations

import os
from typing import Dict, Sequence

import numpy as np
import torch

from avse.corpus.synthetic.scenes import image_to_tensor_layout
from avse.errors import InputError
from avse.nets.noise_embed import NoiseEmbedModel
from avse.nets.noise_tokenizer import Tokenizer

FORMAT = "avse-noise-embed-1"


def save_noise_embed(path: str, model: NoiseEmbedModel, tokenizer: Tokenizer, model_conf: dict,
                     meta: dict) -> None:
    """Write the model file atomically (one ``torch.save`` of plain data)."""
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save({"format": FORMAT, "model_conf": dict(model_conf), "state_dict": model.state_dict(),
                "tokenizer": tokenizer.proto, "meta": dict(meta)}, tmp)
    os.replace(tmp, path)


class NoiseEmbedder:
    """Model + tokenizer + settings (module docstring). ``meta``: ``types`` (the training
    noise types), ``fs``, ``clip_seconds``, ``decoder`` (``n_fft``, ``hop``, ``rank``,
    ``modality``), ``ext_dim``."""

    def __init__(self, model: NoiseEmbedModel, tokenizer: Tokenizer, meta: dict, device="cpu"):
        self.model, self.tok, self.meta = model.eval(), tokenizer, dict(meta)
        self.device = torch.device(device)
        self.fs = int(meta.get("fs", 16000))

    @classmethod
    def load(cls, path: str, device="cpu") -> "NoiseEmbedder":
        if not os.path.isfile(path):
            raise InputError(f"{path}: noise-embedding model not found "
                             "(train it: python -m avse.bin.train_noise_embed)")
        ck = torch.load(path, map_location=device, weights_only=False)
        if not isinstance(ck, dict) or ck.get("format") != FORMAT:
            raise InputError(f"{path}: not a noise-embedding model file ({FORMAT})")
        model = NoiseEmbedModel(**ck["model_conf"]).to(device)
        model.load_state_dict(ck["state_dict"])
        return cls(model, Tokenizer(ck["tokenizer"]), ck["meta"], device)

    @torch.no_grad()
    def encode(self, modality: str, x) -> torch.Tensor:
        return self.model.encode(modality, x.to(self.device) if torch.is_tensor(x) else x)

    def texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self.encode("text", self.tok.encode(list(texts)))

    def images(self, imgs) -> torch.Tensor:
        arr = np.stack([image_to_tensor_layout(i) for i in imgs])
        return self.encode("image", torch.from_numpy(arr))

    def clips(self, clips) -> torch.Tensor:
        return self.encode("audio", torch.as_tensor(np.stack(clips), dtype=torch.float32))

    def external(self, feats) -> torch.Tensor:
        return self.encode("ext", torch.as_tensor(np.stack(feats), dtype=torch.float32))

    def embed(self, modality: str, items) -> torch.Tensor:
        """``items`` of one modality (``text``, ``image``, ``audio``, ``ext``) -> (B, D)."""
        fn = {"text": self.texts, "image": self.images, "audio": self.clips, "ext": self.external}
        if modality not in fn:
            raise InputError(f"unknown modality {modality!r}; choose from {sorted(fn)}")
        return fn[modality](items)

    @torch.no_grad()
    def bases(self, e: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, D)`` (or ``(D,)``) -> NMF bases ``(B, F, K)``."""
        e = torch.as_tensor(e, dtype=torch.float32, device=self.device)
        return self.model.decoder(e.reshape(-1, e.shape[-1]))


def retrieval_top1(query: Dict[str, torch.Tensor], gallery: Dict[str, torch.Tensor],
                   rng: np.random.Generator, trials: int = 20) -> float:
    """Top-1 retrieval accuracy among noise types.

    ``query[t]``, ``gallery[t]``: unit-norm embeddings ``(n_t, D)`` of type ``t`` in two
    modalities. In each trial one gallery item per type is drawn at random; every query
    item retrieves the most similar of them; correct when it is of the query's type.
    Returns the fraction correct over all queries and trials.
    """
    types = sorted(set(query) & set(gallery))
    if len(types) < 2:
        raise InputError("retrieval needs at least two noise types in both modalities")
    hits = total = 0
    for _ in range(int(trials)):
        g = torch.stack([gallery[t][int(rng.integers(len(gallery[t])))] for t in types])
        for i, t in enumerate(types):
            best = (query[t] @ g.t()).argmax(dim=1)
            hits += int((best == i).sum())
            total += len(query[t])
    return hits / max(total, 1)
