"""Enhancement of a recording of any length in overlapping chunks, in bounded memory.

A recording is read as mono samples at the model's rate (:class:`avse.io.stream.AudioReader`)
and cut into chunks of ``chunk`` samples overlapping by ``overlap`` (the last chunk runs
to the end of the file). Both are multiples of :func:`chunk_unit`: whole STFT hops (and
whole 25 fps video frames for an audio-visual model), so a chunk's STFT frames (and lip
frames) are those of the file.

* A file of one chunk is peak-normalised, enhanced and written as
  :mod:`avse.bin.enhance` does (the same output for the same seed and key).
* A longer file is read twice. The first pass finds the file's peak and, for a noise
  model with a whole-file estimate (``stationary``, ``nmf`` with ``init: quantile``;
  :mod:`avse.enhance.file_noise`), its noise PSD; the second enhances every chunk of the
  peak-normalised signal, giving each the file's noise PSD (``noise_psd``, in the units
  of that chunk's ``X``) and a generator seeded per chunk. Consecutive outputs are
  cross-faded over the overlap with complementary weights ``sin^2`` / ``cos^2`` (they sum
  to 1: no gain change, and a chunk's edges, where its STFT and the network see a cut,
  weigh almost nothing). Noise models estimated per call (``nmf`` with ``init: random``,
  ``fixed``, VAE methods, ``cascade``) estimate per chunk.

Peak memory: a few copies of one chunk (``chunk`` samples at the model rate), the
enhancer's working set for one chunk (its ``(n_samples, F, T_chunk)`` spectrogram batch
and network activations), the noise histogram (``F x 4500`` counters, 4.6 MB for
256 bins) and the read/resample blocks (64 k samples): it grows with ``chunk``, not with
the file. (A Kaldi pipe's output is held in memory, compressed as it comes.)
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from avse.enhance.file_noise import FilePSD
from avse.errors import InputError
from avse.io.stream import AudioReader, AudioWriter, chunk_plan

LIP_FPS = 25

#: ``(x (n,) float32 at the model rate, start sample, chunk index, noise_psd or None) -> y (n,)``
ChunkFn = Callable[[np.ndarray, int, int, "torch.Tensor | None"], np.ndarray]


def enhance_waveform(m, enhancer, x: np.ndarray, generator: torch.Generator, score_fn=None, cond=None,
                     **aux) -> tuple[np.ndarray, int]:
    """Enhance ``x`` (N,) float32 with the model ``m`` (:class:`avse.nets.storage.LoadedModel`):
    STFT and compression, frames padded for the network, the enhancer (a diffusion one
    with ``score_fn`` and ``aux``, a VAE one with ``cond``), cropped and inverted.
    Returns ``(y (N,) or (K, N) float32, network calls)``."""
    fe = m.frontend
    X, T = fe.pad_frames(fe(torch.from_numpy(np.ascontiguousarray(x)).to(generator.device)))
    X = X.to(torch.complex64)
    if m.kind == "vae":
        S = enhancer(m.model, X, generator=generator, cond=cond)
    else:
        S = enhancer(score_fn, m.sde, X, generator=generator, **aux)
    y = fe.inverse(fe.crop_frames(S, T), length=len(x)).float().cpu().numpy()
    return y.astype(np.float32), int((getattr(enhancer, "last_stats", None) or {}).get("nfe", 0))


def chunk_unit(fs: int, hop: int, video: bool = False) -> int:
    """Samples that chunk starts are multiples of: whole STFT hops and, with ``video`` (an
    audio-visual model) where ``fs`` is a multiple of 25, whole video frames (640 samples at
    16 kHz with hop 128)."""
    return math.lcm(hop, fs // LIP_FPS) if video and fs % LIP_FPS == 0 else hop


def chunk_samples(fs: int, frontend, chunk_s: float, overlap_s: float, video: bool = False) -> tuple[int, int]:
    """``(chunk, overlap)`` in samples: rounded up to :func:`chunk_unit`; the overlap at
    least ``2 n_fft`` samples, the chunk at least twice the overlap."""
    unit = chunk_unit(fs, frontend.hop, video)
    overlap = max(math.ceil(overlap_s * fs / unit), math.ceil(2 * frontend.n_fft / unit)) * unit
    chunk = math.ceil(chunk_s * fs / unit) * unit
    if not chunk_s > 0 or overlap_s < 0 or chunk < 2 * overlap:
        raise InputError(f"chunk length {chunk_s} s must be positive and at least twice the overlap "
                         f"({overlap / fs:.3f} s, at least 2 n_fft = {2 * frontend.n_fft} samples)")
    return chunk, overlap


def crossfade(n: int) -> np.ndarray:
    """Rising weights (n,) ``sin^2(pi/2 (j + 1/2) / n)``; the falling ones are ``1 - w``."""
    return (np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)


class ChunkedEnhancer:
    """Enhance files chunk by chunk (module docstring).

    Args:
        frontend, fs: the model's front-end and sample rate.
        chunk, overlap: from :func:`chunk_samples`.
        noise_model: the enhancer's :class:`~avse.enhance.noise_choice.NoiseChoice` when it
            takes a whole-file PSD (``file_psd``), else None.
    """

    def __init__(self, frontend, fs: int, chunk: int, overlap: int, noise_model=None):
        self.fe, self.fs, self.chunk, self.overlap = frontend, int(fs), int(chunk), int(overlap)
        self.noise_model = noise_model if getattr(noise_model, "file_psd", False) else None
        self.fade = crossfade(self.overlap)

    def core(self, start: int, last: bool) -> slice:
        """STFT frames of the chunk starting at ``start`` that are its alone: from the middle
        of the overlap with the previous chunk to the middle of that with the next."""
        c = self.overlap // 2 // self.fe.hop
        hop = (self.chunk - self.overlap) // self.fe.hop
        return slice(0 if start == 0 else c, None if last else hop + c)

    def file_stats(self, reader: AudioReader) -> tuple[float, torch.Tensor | None]:
        """First pass: ``(peak, noise PSD (F, 1) in the units of the peak-normalised X, or None)``."""
        peak, est = 0.0, FilePSD(self.noise_model, self.fe) if self.noise_model is not None else None
        for start, x, last in reader.chunks(self.chunk, self.overlap):
            peak = max(peak, float(np.max(np.abs(x))))
            if est is not None:
                est.add(self.fe(torch.from_numpy(np.ascontiguousarray(x))), self.core(start, last))
        psd = est.psd() if est is not None else None
        if psd is not None and peak > 0:   # X of x / peak is X / peak^alpha
            psd = psd / (peak ** self.fe.alpha) ** self.noise_model.power_exponent(self.fe)
        return peak, psd

    def __call__(self, reader: AudioReader, out_path: str, fn: ChunkFn, progress=None) -> dict:
        """Enhance ``reader``'s file into ``out_path`` (32-bit float WAV at the file's rate and
        length) with ``fn`` per chunk; ``progress``: a tqdm bar to advance per chunk.
        Returns ``{"chunks", "seconds" (of audio), "passthrough" (why the input was written
        unchanged, or None), "file_psd" (a whole-file noise PSD was used)}``. Passthrough, as
        in :mod:`avse.bin.enhance`: all-zero input, a file shorter than one STFT frame."""
        chunks = reader.chunks(self.chunk, self.overlap)
        _, x, single = next(chunks)
        if single:   # one chunk: the file is read once
            peak, psd, n_chunks = float(np.max(np.abs(x))), None, 1
        else:
            chunks.close()
            peak, psd = self.file_stats(reader)
            n_chunks = len(chunk_plan(-(-reader.frames * self.fs // reader.fs_in), self.chunk, self.overlap))
        why = "all-zero input" if peak == 0 else None
        if single and len(x) < self.fe.n_fft:
            why = f"shorter than one STFT frame ({len(x)} < {self.fe.n_fft} samples)"
        if progress is not None:
            progress.reset(total=n_chunks)
        with AudioWriter(out_path, self.fs, reader.fs_in, reader.frames) as w:
            if why is not None:
                w.write(x if single else np.zeros(0, np.float32))   # the writer pads with zeros
            elif single:
                w.write(np.asarray(fn(x / peak, 0, 0, None), np.float32) * peak)
                if progress is not None:
                    progress.update(1)
            else:
                self._run(reader.chunks(self.chunk, self.overlap), fn, peak, psd, w, progress)
        return {"chunks": n_chunks, "seconds": reader.frames / reader.fs_in, "passthrough": why,
                "file_psd": psd is not None}

    def _run(self, chunks, fn: ChunkFn, peak: float, psd, w: AudioWriter, progress) -> None:
        """Second pass: enhance, cross-fade and write every chunk."""
        n_o, tail = self.overlap, None
        for i, (start, x, last) in enumerate(chunks):
            y = np.asarray(fn(x / peak, start, i, psd), np.float32) * peak
            if y.shape != x.shape:
                raise InputError(f"chunk {i}: the enhancer returned {y.shape} samples for {x.shape}")
            if tail is not None:
                y[:n_o] = tail * (1.0 - self.fade) + y[:n_o] * self.fade
            w.write(y if last else y[:len(y) - n_o])
            tail = None if last else y[len(y) - n_o:].copy()
            if progress is not None:
                progress.update(1)
