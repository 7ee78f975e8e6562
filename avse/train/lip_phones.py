"""Supervised lip-encoder pretraining on time-aligned phone labels (lip reading per frame).

Real audio-visual systems start from a lip-reading network (e.g. the ResNet-18 + MS-TCN
of Martinez et al., "Lipreading using temporal convolutional networks", ICASSP 2020,
used by AV-UDiffSE, Ayilo et al., ICASSP 2025): an encoder trained to tell *what* is
said, so that its features carry content. No such weights can be fetched here, but a
corpus with time alignments (mini_av's ``utt2phones``: ``<utt> <file>`` of
``<start s> <end s> <phone>`` lines, or the same lines inline) lets the encoder be
trained for the same task: classify every 25 fps video frame into the phone spoken at
its centre, ``(j + 0.5) / fps`` (gaps between phones are silence, class 0).

Labels are base phones (stress and length marks and variant suffixes of espeak-ng
mnemonics removed, :func:`base_phone`). The lips cannot tell apart phones of one
viseme (``b p m``), so the accuracy is also reported on viseme classes: phones whose
articulation targets (:data:`avse.corpus.synthetic.visemes.VISEMES`) are equal share a class.

Shapes: :class:`LipPhoneModel` ``(lips (B, T, H, W), mask (B, T)) -> logits (B, T,
n_phones)``; :func:`phone_loss` ``(logits, labels (B, T) int64, -1 = ignore) -> (loss,
phone accuracy, viseme accuracy)``.
"""
import os
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from avse.errors import InputError
from avse.io.scp import read_table
from avse.train.av_dataset import AVCropDataset

SILENCE = "sil"
_STRESS = re.compile(r"[',%=]")
_SUFFIX = re.compile(r"[0-9#/\-;!]+$")


def base_phone(phone: str) -> str:
    """An espeak-ng mnemonic without stress/length marks and variant suffixes (``'a:`` ->
    ``a:``, ``@2`` -> ``@``); pauses (``_``, ``_:``) and empty marks -> :data:`SILENCE`."""
    p = _SUFFIX.sub("", _STRESS.sub("", str(phone)).strip()) or _STRESS.sub("", str(phone)).strip()
    return SILENCE if p in ("", "_", "_:") else p


def read_alignment(value: str, key: str = "?") -> List[Tuple[float, float, str]]:
    """``[(start s, end s, phone)]`` from a ``utt2phones`` value: a file path, or the
    ``start end phone`` triples inline."""
    text = value
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as f:
            text = f.read()
    toks = text.split()
    if len(toks) % 3:
        raise InputError(f"utterance {key!r}: utt2phones value is neither a file nor 'start end phone' triples")
    out = []
    try:
        for i in range(0, len(toks), 3):
            s, e = float(toks[i]), float(toks[i + 1])
            out.append((s, e, toks[i + 2]))
    except ValueError as err:
        raise InputError(f"utterance {key!r}: bad utt2phones entry: {err}") from err
    return out


def frame_labels(ali: Sequence[Tuple[float, float, str]], n_frames: int, index: Dict[str, int],
                 fps: float = 25.0) -> np.ndarray:
    """``(n_frames,)`` int64: the phone class at each video-frame centre (0: silence or a
    phone outside ``index``, i.e. unseen in training)."""
    centres = (np.arange(n_frames) + 0.5) / float(fps)
    lab = np.zeros(n_frames, np.int64)
    for s, e, p in ali:
        lab[(centres >= s) & (centres < e)] = index.get(base_phone(p), 0)
    return lab


def phone_inventory(alignments: Dict[str, Sequence[Tuple[float, float, str]]]) -> List[str]:
    """Sorted base phones of the alignments with :data:`SILENCE` first (class 0)."""
    phones = {base_phone(p) for ali in alignments.values() for _, _, p in ali} - {SILENCE}
    return [SILENCE] + sorted(phones)


def viseme_classes(phones: Sequence[str]) -> np.ndarray:
    """``(n_phones,)`` int64 viseme class of each phone: equal articulation targets (first
    part of a diphthong) share a class; silence is class 0."""
    from avse.corpus.synthetic.visemes import phoneme_parts

    keys, out = {}, []
    for p in phones:
        k = "pause" if p == SILENCE else tuple(np.round(phoneme_parts(p)[0].vector(), 3))
        out.append(keys.setdefault(k, len(keys)))
    return np.asarray(out, np.int64)


def read_labels(data_dir: str, phones: List[str] | None = None, table: str = "utt2phones"):
    """``(alignments {key: [(s, e, phone)]}, phones)`` of a data dir; ``phones`` (the
    training inventory) is built from these alignments when not given."""
    path = os.path.join(data_dir, table)
    if not os.path.isfile(path):
        raise InputError(f"{path}: not found; phone-label pretraining needs time alignments "
                         "(mini_av writes utt2phones; or use --objective sync)")
    alis = {k: read_alignment(v, k) for k, v in read_table(path).items()}
    if not alis:
        raise InputError(f"{path}: empty")
    return alis, (phones if phones is not None else phone_inventory(alis))


class LabelledAVCrops(AVCropDataset):
    """:class:`AVCropDataset` items plus the crop's frame labels: ``(spec, lips, mask,
    rel, labels (Tc,) int64)`` with -1 where the video is missing or unlabelled."""

    def __init__(self, *args, alignments: Dict[str, list], phones: List[str], **kw):
        super().__init__(*args, **kw)
        self.alignments, self.phones = alignments, list(phones)
        self.index = {p: i for i, p in enumerate(self.phones)}
        self.fps = self.fs / self.spf

    def extra_fields(self, index: int, n_samples: int, crop_seed: int, mask: np.ndarray) -> tuple:
        key = self.utts[index][0]
        n = len(mask)
        lab = np.full(n, -1, np.int64)
        if key in self.alignments:
            k0 = self.offset(n_samples, crop_seed) // self.spf
            lab = frame_labels(self.alignments[key], k0 + n, self.index, self.fps)[k0:]
            lab[~mask] = -1
        return (torch.from_numpy(lab),)


class LipPhoneModel(nn.Module):
    """A lip encoder with a linear phone classifier on its per-frame embeddings."""

    def __init__(self, lip_encoder: nn.Module, n_phones: int):
        super().__init__()
        self.lip_encoder = lip_encoder
        self.head = nn.Linear(lip_encoder.dim, int(n_phones))

    def forward(self, lips: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.lip_encoder(lips, mask))


def phone_loss(logits: torch.Tensor, labels: torch.Tensor, visemes: torch.Tensor):
    """Cross-entropy over labelled frames; ``(loss, phone accuracy, viseme accuracy)``."""
    if logits.shape[:2] != labels.shape:
        raise InputError(f"phone loss: logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}")
    valid = labels >= 0
    if not bool(valid.any()):
        zero = logits.sum() * 0.0
        return zero, 0.0, 0.0
    lg, lb = logits[valid], labels[valid]
    loss = F.cross_entropy(lg, lb)
    pred = lg.argmax(-1)
    vis = visemes.to(lb.device)
    return loss, float((pred == lb).float().mean()), float((vis[pred] == vis[lb]).float().mean())
