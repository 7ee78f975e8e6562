"""Training data for the clean-speech prior: random crops of compressed STFTs.

Each training example is a crop of ``crop_frames`` STFT frames (256, about 2 s at
16 kHz with hop 128) of one clean utterance, computed on the fly from the data dir's
``wav.scp``: the whole waveform is peak-normalised to ``max |x| = 1`` (as inference
normalises its input), a window of ``(crop_frames - 1) * hop`` samples is cut at a
random offset (short utterances are zero-padded at the end), and the front-end gives
the compressed complex spectrogram ``(F = 256, crop_frames)`` complex64 (SGMSE+,
Richter et al. 2023; UDiffSE, Nortier et al., ICASSP 2024).

Determinism. Everything random is a function of ``(seed, step)``: :class:`StepSampler`
is an infinite sampler whose ``g``-th draw (``g`` counts examples over all steps and
ranks) is utterance ``perm_e[g mod n]`` of the epoch ``e = g // n`` permutation
(seeded by ``(seed, e)``) together with a crop seed ``stable_hash(seed, g)``. The
dataset is indexed by these ``(utt_index, crop_seed)`` pairs, so the crops do not
depend on the number of DataLoader workers, and resuming at step ``s`` is starting
the sampler at ``s``. With DDP each rank draws its own disjoint slice of every step.
"""
import logging
import os
from typing import Iterator, List, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from avse.dsp.stft import SpectralFrontEnd
from avse.errors import InputError, StageError
from avse.io.audio import audio_info, load_audio
from avse.io.scp import read_table
from avse.utils.seeding import stable_hash

log = logging.getLogger(__name__)


def read_utterances(data_dir: str, fs: int, min_samples: int, what: str = "training") -> List[Tuple[str, str]]:
    """``[(key, path)]`` of ``data_dir/wav.scp`` with at least ``min_samples`` samples.

    Reads only the file headers. Shorter utterances are left out with one warning
    giving their number. Raises :class:`StageError` for a missing dir/``wav.scp``
    and :class:`InputError` for an empty scp, a wrong sample rate or several channels,
    or when no utterance is long enough.
    """
    scp = os.path.join(data_dir, "wav.scp")
    if not os.path.isdir(data_dir) or not os.path.isfile(scp):
        raise StageError(f"{scp}: not found; run stage 3 (dump) first")
    table = read_table(scp)
    if not table:
        raise InputError(f"{scp}: empty wav.scp, no {what} data")
    keep, short = [], []
    for key, path in table.items():
        sr, ch, n = audio_info(path, utt=key)
        if sr != fs:
            raise InputError(f"{scp}: utterance {key!r}: sample rate {sr} Hz, expected {fs} Hz "
                             "(dump the data at the model's rate)")
        if ch != 1:
            raise InputError(f"{scp}: utterance {key!r}: {ch} channels, expected mono")
        (keep if n >= min_samples else short).append((key, path))
    if short:
        log.warning("%s: leaving out %d of %d utterances shorter than one STFT frame (%d samples), e.g. %s",
                    scp, len(short), len(table), min_samples, [k for k, _ in short[:5]])
    if not keep:
        raise InputError(f"{scp}: no utterance is at least {min_samples} samples long")
    return keep


def peak_normalize(x: np.ndarray) -> np.ndarray:
    """Scale ``x`` to ``max |x| = 1`` (a silent signal is returned unchanged)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x / peak if peak > 0 else x


class CropDataset(Dataset):
    """Map-style dataset of random compressed-STFT crops.

    Indexed by ``(utt_index, crop_seed)`` pairs (from :class:`StepSampler`) or by a
    plain ``int`` (crop seed ``stable_hash("fixed", index)``). An item is a complex64
    tensor ``(F, crop_frames)``: the compressed STFT of the peak-normalised crop.

    Args:
        utts: ``[(key, audio path)]`` (see :func:`read_utterances`).
        frontend_conf: :class:`SpectralFrontEnd` arguments.
        crop_frames: frames per crop (256 in SGMSE+/UDiffSE).
        fs: sample rate in Hz.
    """

    def __init__(self, utts: List[Tuple[str, str]], frontend_conf: dict | None = None,
                 crop_frames: int = 256, fs: int = 16000):
        if not utts:
            raise InputError("CropDataset: no utterances")
        if crop_frames < 1:
            raise InputError(f"crop_frames must be >= 1, got {crop_frames}")
        self.utts = list(utts)
        self.frontend = SpectralFrontEnd(**(frontend_conf or {}))
        self.crop_frames = int(crop_frames)
        self.fs = int(fs)
        self.crop_samples = (self.crop_frames - 1) * self.frontend.hop
        assert self.frontend.n_frames(self.crop_samples) == self.crop_frames or not self.frontend.center

    def __len__(self) -> int:
        return len(self.utts)

    def waveform(self, index: int, crop_seed: int) -> np.ndarray:
        """The peak-normalised crop ``(crop_samples,)`` float32 of utterance ``index``."""
        key, path = self.utts[index]
        x, _ = load_audio(path, self.fs, utt=key, allow_silent=True)
        x = peak_normalize(x.astype(np.float32, copy=False))
        L = self.crop_samples
        if len(x) >= L:
            off = int(np.random.default_rng(crop_seed).integers(0, len(x) - L + 1))
            return np.ascontiguousarray(x[off:off + L])
        return np.pad(x, (0, L - len(x)))

    def __getitem__(self, item) -> torch.Tensor:
        if isinstance(item, (tuple, list)):
            index, crop_seed = int(item[0]), int(item[1])
        else:
            index, crop_seed = int(item), stable_hash("fixed", int(item))
        x = torch.from_numpy(self.waveform(index, crop_seed))
        with torch.no_grad():
            C = self.frontend(x)
        if C.shape[-1] != self.crop_frames:  # center=False front-ends
            C, _ = self.frontend.pad_frames(C[..., :self.crop_frames], self.crop_frames)
        return C.to(torch.complex64)


class StepSampler(Sampler):
    """Infinite sampler of ``(utt_index, crop_seed)`` pairs, a function of ``(seed, step)``.

    Step ``s`` of rank ``r`` (of ``world_size``) yields the ``batch_size`` draws
    ``g = (s * world_size + r) * batch_size + j``, ``j < batch_size``; see the module
    docstring. ``start_step`` resumes the stream exactly.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1, start_step: int = 0):
        if n_items < 1 or batch_size < 1:
            raise InputError(f"StepSampler: need n_items >= 1 and batch_size >= 1, got {n_items}, {batch_size}")
        self.n, self.batch_size, self.seed = int(n_items), int(batch_size), int(seed)
        self.rank, self.world_size, self.start_step = int(rank), int(world_size), int(start_step)
        self._perm_epoch, self._perm = -1, None

    def permutation(self, epoch: int) -> np.ndarray:
        """The utterance order of ``epoch`` (cached)."""
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed & 0xFFFFFFFF, epoch]).permutation(self.n)
            self._perm_epoch = epoch
        return self._perm

    def draw(self, g: int) -> Tuple[int, int]:
        epoch, pos = divmod(g, self.n)
        return int(self.permutation(epoch)[pos]), stable_hash(self.seed, "crop", g)

    def batch(self, step: int) -> List[Tuple[int, int]]:
        """The draws of ``step`` for this rank."""
        g0 = (step * self.world_size + self.rank) * self.batch_size
        return [self.draw(g0 + j) for j in range(self.batch_size)]

    def epoch_of(self, step: int) -> float:
        """Epochs seen (fractional) after ``step`` steps over all ranks."""
        return step * self.world_size * self.batch_size / self.n

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        step = self.start_step
        while True:
            yield from self.batch(step)
            step += 1


def worker_init(_worker_id: int) -> None:
    """DataLoader worker set-up: one thread per worker (no oversubscription)."""
    torch.set_num_threads(1)


def make_loader(dataset: CropDataset, sampler: StepSampler, num_workers: int = 0,
                pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A DataLoader giving one ``(batch_size, F, crop_frames)`` complex batch per step."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=sampler.batch_size, sampler=sampler, num_workers=int(num_workers),
        pin_memory=pin_memory, worker_init_fn=worker_init if num_workers > 0 else None,
        persistent_workers=False, prefetch_factor=2 if num_workers > 0 else None)


def fixed_crops(dataset: CropDataset, n: int, seed: int = 0):
    """``(min(n, len), F, crop_frames)`` crops of the first utterances at seeded offsets:
    the same at every call, for a validation loss comparable across steps. For a
    dataset with tuple items (:class:`avse.train.av_dataset.AVCropDataset`) a tuple of
    stacked fields."""
    items = [dataset[(i, stable_hash(seed, "valid", dataset.utts[i][0]))] for i in range(min(n, len(dataset)))]
    if isinstance(items[0], tuple):
        return tuple(torch.stack(f) for f in zip(*items))
    return torch.stack(items)
