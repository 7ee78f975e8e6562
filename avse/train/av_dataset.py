"""Audio-visual training crops: compressed-STFT crops with the lip frames of the same time.

A crop of ``crop_frames`` STFT frames starts on a video-frame boundary: at 16 kHz,
hop 128 and 25 fps a video frame is ``fs / fps = 640`` samples = 5 STFT frames, and the
crop offset is a multiple of 640 samples. STFT frame ``i`` of the crop (centred) is at
``i * hop`` samples from the crop start and video frame ``j`` of the lip crop covers
``[j * 640, (j + 1) * 640)`` (centre ``j * 640 + 320``), the time convention of
:func:`avse.nets.fusion.align_cond`. The lip crop has ``Tc = ceil(crop_frames * hop / 640)``
frames (52 for 256 STFT frames = 51.2 video frames); frames past the end of the video
are missing (mask False).

The lips and their reliability come from the tables of a dump dir
(:func:`avse.lips.tables.lip_tables`). Utterances without lips stay in the training set
with every frame missing (clean speech without video still teaches the prior).

With a ``features`` lip encoder (``visual="features"``) the frames are rows of ``(T, D)``
float visual features instead of mouth crops (``lip_feats.scp`` by default): the same
time convention; an utterance whose features are more than :data:`MAX_FEATURE_MISMATCH`
seconds longer or shorter than its audio at 25 fps is refused (features at another rate?).
"""
import logging
import math
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from avse.errors import InputError
from avse.lips.backends import LIP_FPS
from avse.lips.tables import as_features, lip_tables, load_visual
from avse.train.dataset import CropDataset
from avse.train.visual_aug import VisualAugment

log = logging.getLogger(__name__)
MAX_FEATURE_MISMATCH = 0.5  # s: the dump's default max_av_mismatch for crops

class AVCropDataset(CropDataset):
    """:class:`CropDataset` with aligned lip crops (see the module docstring).

    An item is ``(spec (F, crop_frames) complex64, lips (Tc, H, W) uint8 (features:
    (Tc, D) float32), mask (Tc,) bool, rel (Tc,) float32)``; ``augment`` (a
    :class:`VisualAugment`) corrupts the lips, deterministically in the crop seed.

    Args:
        utts, frontend_conf, crop_frames, fs: as :class:`CropDataset`.
        lips: ``{key: (lip path, reliability path | None)}`` (:func:`lip_tables`).
        fps: video frame rate; ``fs / fps`` must be a whole number of samples (any hop:
            the fusions align the two rates by time, :func:`avse.nets.fusion.align_cond`).
        lip_size: expected crop size (frames of utterances without lips are zeros).
        visual: ``crops`` or ``features`` (rows of ``feat_dim`` floats).
    """

    def __init__(self, utts: List[Tuple[str, str]], lips: Dict[str, Tuple[str, Optional[str]]],
                 frontend_conf: dict | None = None, crop_frames: int = 256, fs: int = 16000,
                 fps: float = LIP_FPS, augment: VisualAugment | None = None, lip_size: int = 88,
                 visual: str = "crops", feat_dim: int | None = None):
        super().__init__(utts, frontend_conf, crop_frames, fs)
        spf = fs / fps
        hop = self.frontend.hop
        if abs(spf - round(spf)) > 1e-9:
            raise InputError(f"AV crops start on video frames: fs / fps = {spf:g} samples per video frame "
                             "must be a whole number")
        self.spf = int(round(spf))
        self.lips, self.augment, self.lip_size = dict(lips), augment, int(lip_size)
        self.fps, self.visual, self.feat_dim = float(fps), visual, feat_dim
        if visual == "features":
            if not feat_dim or int(feat_dim) < 1:
                raise InputError("AV crops of visual features need their size feat_dim (lip_encoder_conf.in_dim)")
            self.feat_dim = int(feat_dim)
            self.frame_shape, self.frame_dtype = (self.feat_dim,), np.float32
        elif visual == "crops":
            self.frame_shape, self.frame_dtype = (self.lip_size, self.lip_size), np.uint8
        else:
            raise InputError(f"unknown visual input {visual!r}; expected crops or features")
        self.n_video = math.ceil(self.crop_frames * hop / self.spf)
        missing = [k for k, _ in self.utts if k not in self.lips]
        if missing:
            log.warning("%d of %d utterances have no lips (trained with the video missing), e.g. %s",
                        len(missing), len(self.utts), missing[:5])
        if len(missing) == len(self.utts):
            raise InputError("AV training: no utterance of wav.scp has an entry in lip.scp")

    def offset(self, n_samples: int, crop_seed: int) -> int:
        """Crop start in samples: a multiple of ``fs / fps``."""
        slack = n_samples - self.crop_samples
        if slack <= 0:
            return 0
        return self.spf * int(np.random.default_rng(crop_seed).integers(0, slack // self.spf + 1))

    def waveform(self, index: int, crop_seed: int) -> np.ndarray:
        x = self._full(index)
        off = self.offset(len(x), crop_seed)
        L = self.crop_samples
        seg = x[off:off + L]
        return np.ascontiguousarray(np.pad(seg, (0, L - len(seg))))

    def _full(self, index: int) -> np.ndarray:
        from avse.io.audio import load_audio
        from avse.train.dataset import peak_normalize
        key, path = self.utts[index]
        x, _ = load_audio(path, self.fs, utt=key, allow_silent=True)
        return peak_normalize(x.astype(np.float32, copy=False))

    def lip_crop(self, index: int, n_samples: int, crop_seed: int):
        """``(lips (Tc, H, W) uint8 or features (Tc, D) float32, mask (Tc,) bool, rel (Tc,)
        float32)`` of the crop (before augmentation)."""
        key = self.utts[index][0]
        Tc = self.n_video
        lips = np.zeros((Tc,) + self.frame_shape, self.frame_dtype)
        mask = np.zeros(Tc, bool)
        rel = np.zeros(Tc, np.float32)
        if key in self.lips:
            path = self.lips[key][0]
            arr, r = load_visual(self.visual, *self.lips[key], key=key, mmap=True, dim=self.feat_dim)
            if arr.shape[1:] != self.frame_shape:
                raise InputError(f"utterance {key!r}: lips are {arr.shape[1:]}, expected {self.frame_shape}")
            if self.visual == "features":
                self._check_length(key, path, len(arr), n_samples)
            k = self.offset(n_samples, crop_seed) // self.spf
            seg = np.asarray(arr[k:k + Tc])
            if self.visual == "features":
                seg = as_features(seg, key, path)
            n = len(seg)
            lips[:n], mask[:n], rel[:n] = seg, True, r[k:k + n]
        return lips, mask, rel

    def _check_length(self, key: str, path: str, n_frames: int, n_samples: int) -> None:
        want = math.ceil(n_samples * self.fps / self.fs)
        if abs(n_frames - want) > MAX_FEATURE_MISMATCH * self.fps:
            raise InputError(f"utterance {key!r}: {path} has {n_frames} feature frames, the audio "
                             f"({n_samples / self.fs:.2f} s) {want} at {self.fps:g} fps; visual features must "
                             "be at the video frame rate")

    def __getitem__(self, item):
        if isinstance(item, (tuple, list)):
            index, crop_seed = int(item[0]), int(item[1])
        else:
            from avse.utils.seeding import stable_hash
            index, crop_seed = int(item), stable_hash("fixed", int(item))
        x = self._full(index)
        off = self.offset(len(x), crop_seed)
        L = self.crop_samples
        seg = x[off:off + L]
        w = torch.from_numpy(np.ascontiguousarray(np.pad(seg, (0, L - len(seg)))))
        with torch.no_grad():
            C = self.frontend(w)
        if C.shape[-1] != self.crop_frames:
            C, _ = self.frontend.pad_frames(C[..., :self.crop_frames], self.crop_frames)
        lips, mask, rel = self.lip_crop(index, len(x), crop_seed)
        if self.augment is not None:
            lips, mask, rel = self.augment(lips, mask, rel, np.random.default_rng([crop_seed & 0xFFFFFFFF,
                                                                                   crop_seed >> 32, 7]))
        rel = rel * mask
        return (C.to(torch.complex64), torch.from_numpy(np.ascontiguousarray(lips)),
                torch.from_numpy(mask.copy()), torch.from_numpy(rel.astype(np.float32))
                ) + self.extra_fields(index, len(x), crop_seed, mask)

    def extra_fields(self, index: int, n_samples: int, crop_seed: int, mask: np.ndarray) -> tuple:
        """Further per-crop fields appended to an item (none here; e.g. frame labels in
        :class:`avse.train.lip_phones.LabelledAVCrops`). ``mask`` is the crop's
        (augmented) video mask."""
        return ()


def av_dataset_from_config(cfg: dict, data_dir: str, utts: List[Tuple[str, str]], frontend_conf: dict,
                           train: bool) -> AVCropDataset:
    """The AV crops of a training config (``lip_rel_source``, ``visual_aug`` for the
    training set only; the encoder's input: crops of size ``lip_encoder_conf.size`` or
    features of size ``lip_encoder_conf.in_dim``, from ``lip_table`` or its default)."""
    from avse.nets.lip_encoder import encoder_input, lip_table

    aug_conf = cfg.get("visual_aug")
    if aug_conf is not None and not isinstance(aug_conf, dict):
        raise InputError(f"visual_aug must be a mapping or null, got {aug_conf!r}")
    try:
        aug = VisualAugment(**aug_conf) if (train and aug_conf is not None) else None
    except TypeError as e:
        raise InputError(f"visual_aug: bad options {aug_conf}: {e}") from e
    name, conf = cfg["lip_encoder"], cfg.get("lip_encoder_conf") or {}
    table = os.path.join(data_dir, lip_table(name, cfg.get("lip_table")))
    lips = lip_tables(data_dir, cfg.get("lip_rel_source") or "conf", table)
    return AVCropDataset(utts, lips, frontend_conf, cfg["crop_frames"], cfg["fs"], augment=aug,
                         lip_size=int(conf.get("size", 88)), visual=encoder_input(name), feat_dim=conf.get("in_dim"))
