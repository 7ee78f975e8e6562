"""Streamed audio: a recording read and written in pieces, resampled on the way.

For files longer than memory should hold (:mod:`avse.enhance.chunked`). Samples are
``float32``; the memory used is bounded by the piece size, not the file length.

* :class:`StreamResampler`: polyphase resampling of a signal pushed in pieces. The
  output equals :func:`avse.io.audio.resample` (``scipy.signal.resample_poly``, same
  filter) of the whole signal up to float rounding: each piece is resampled with enough
  input context on both sides (the filter's half length) and from an input sample that is
  a multiple of ``down``, so that its output grid is the whole signal's.
* :class:`AudioReader`: one file as mono samples at a working rate, in consecutive
  blocks or overlapping chunks. Several channels are averaged (``downmixed`` tells);
  a file that soundfile cannot open, an empty file and NaN or infinite samples raise
  :class:`~avse.errors.InputError` naming the file. A Kaldi pipe (``cmd |``) runs once
  and its bytes are kept in memory.
* :class:`AudioWriter`: the output, written at the working rate, resampled to the file's
  rate and cut to a given length; written to a temporary name and renamed when closed
  (a failed file leaves nothing behind).
"""
from __future__ import annotations

import contextlib
import math
from fractions import Fraction
from typing import Iterator

import numpy as np
import soundfile as sf

from avse.errors import InputError
from avse.io.audio import open_source, resample
from avse.utils.fileio import atomic_path

#: samples read from the file per block (at its own rate)
BLOCK = 1 << 16


class StreamResampler:
    """Resample pieces pushed in order from ``fs_in`` to ``fs_out`` Hz (module docstring).

    ``push(x) -> y`` returns the output samples that are complete so far, ``flush() -> y``
    the rest (the whole-signal output has ``ceil(n_in * fs_out / fs_in)`` samples).
    """

    def __init__(self, fs_in: int, fs_out: int):
        r = Fraction(int(fs_out), int(fs_in))
        self.fs_in, self.fs_out, self.up, self.down = int(fs_in), int(fs_out), r.numerator, r.denominator
        self.half = 10 * max(self.up, self.down)   # resample_poly's filter half length (upsampled samples)
        self.buf = np.zeros(0, np.float32)         # input from sample buf_start on
        self.buf_start = self.n_in = self.n_out = 0

    def _run(self, k_stop: int) -> np.ndarray:
        """Output samples ``n_out .. k_stop - 1`` from the buffered input."""
        if k_stop <= self.n_out:
            return np.zeros(0, np.float32)
        first = max(0, (self.n_out * self.down - self.half) // self.up - 1)   # first input sample needed
        n0 = max(self.buf_start, first // self.down * self.down)
        y = resample(self.buf[n0 - self.buf_start:], self.fs_in, self.fs_out)
        off = n0 * self.up // self.down
        out = y[self.n_out - off:k_stop - off]
        self.n_out = k_stop
        keep = max(0, (self.n_out * self.down - self.half) // self.up - 1) // self.down * self.down
        if keep > self.buf_start:
            self.buf, self.buf_start = self.buf[keep - self.buf_start:], keep
        return out

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.up == self.down:
            self.n_in += len(x)
            return x
        self.buf = np.concatenate([self.buf, x])
        self.n_in += len(x)
        # output k needs the input up to (k * down + half) / up; one sample to spare
        k_ready = max(0, -(-(self.n_in * self.up - self.half - self.up) // self.down))
        return self._run(min(k_ready, self.total(self.n_in)))

    def total(self, n_in: int) -> int:
        """Output length of ``n_in`` input samples."""
        return -(-n_in * self.up // self.down)

    def flush(self) -> np.ndarray:
        return np.zeros(0, np.float32) if self.up == self.down else self._run(self.total(self.n_in))


class AudioReader:
    """One recording as mono float32 at ``fs`` Hz, read sequentially (module docstring).

    Attributes: ``fs_in`` (the file's rate), ``channels``, ``frames`` (its length at
    ``fs_in``: the header's count, then the count read once a pass reached the end),
    ``downmixed`` (more than one channel). Every iteration reads the file again from its
    start.
    """

    def __init__(self, path: str, fs: int, label: str | None = None):
        self.path, self.fs, self.label = path, int(fs), label or path
        self.source = open_source(path)    # the path, or the bytes a pipe wrote
        try:
            info = sf.info(self.source)
        except Exception as e:  # soundfile raises RuntimeError / LibsndfileError
            raise InputError(f"{self.label}: unreadable audio: {e}") from e
        self.fs_in, self.channels, self.frames = int(info.samplerate), int(info.channels), int(info.frames)
        if self.frames <= 0:
            raise InputError(f"{self.label}: empty audio (0 samples)")
        self.downmixed = self.channels > 1

    def blocks(self) -> Iterator[np.ndarray]:
        """Consecutive pieces (mono, at ``fs``) covering the whole file."""
        if hasattr(self.source, "seek"):
            self.source.seek(0)
        rs = StreamResampler(self.fs_in, self.fs)
        done = 0
        try:
            with sf.SoundFile(self.source) as f:
                for raw in f.blocks(blocksize=BLOCK, dtype="float32", always_2d=True):
                    if not np.all(np.isfinite(raw)):
                        bad = done + int(np.argmax(~np.all(np.isfinite(raw), axis=1)))
                        raise InputError(f"{self.label}: NaN or infinite samples (first at "
                                         f"{bad / self.fs_in:.3f} s)")
                    done += len(raw)
                    y = rs.push(raw.mean(axis=1) if raw.shape[1] > 1 else raw[:, 0])
                    if len(y):
                        yield y
        except InputError:
            raise
        except Exception as e:
            raise InputError(f"{self.label}: unreadable audio: {e}") from e
        if done == 0:
            raise InputError(f"{self.label}: empty audio (0 samples)")
        self.frames = done
        tail = rs.flush()
        if len(tail):
            yield tail

    def chunks(self, chunk: int, overlap: int) -> Iterator[tuple[int, np.ndarray, bool]]:
        """``(start, samples, last)`` of consecutive chunks of ``chunk`` samples that
        overlap by ``overlap``; the last one runs to the end of the file (longer than
        ``overlap``, at most ``chunk``). A file of at most ``chunk`` samples is one chunk."""
        hop = chunk - overlap
        buf, buf_start, start = np.zeros(0, np.float32), 0, 0
        for y in self.blocks():
            buf = np.concatenate([buf, y])
            while buf_start + len(buf) > start + chunk:   # more follows: not the last chunk
                yield start, buf[start - buf_start:start - buf_start + chunk], False
                start += hop
                buf, buf_start = buf[start - buf_start:], start
        yield start, buf[start - buf_start:], True


class AudioWriter:
    """``with AudioWriter(path, fs, fs_out, n) as w: w.write(y)...``: a mono 32-bit float
    WAV at ``fs_out`` Hz of exactly ``n`` samples from pieces at ``fs`` Hz (cut or padded
    with zeros at the end), renamed into place when the block ends without error."""

    def __init__(self, path: str, fs: int, fs_out: int, n: int):
        self.path, self.n, self.written = path, int(n), 0
        self.rs = StreamResampler(fs, fs_out)
        self.fs_out = int(fs_out)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "AudioWriter":
        tmp = self._stack.enter_context(atomic_path(self.path))
        self.f = self._stack.enter_context(sf.SoundFile(tmp, "w", samplerate=self.fs_out, channels=1,
                                                        subtype="FLOAT", format="WAV"))
        return self

    def _put(self, y: np.ndarray) -> None:
        y = y[:max(0, self.n - self.written)]
        if len(y):
            self.f.write(y)
            self.written += len(y)

    def write(self, y: np.ndarray) -> None:
        """Append ``y`` (at ``fs``)."""
        y = np.asarray(y, np.float32)
        if not np.all(np.isfinite(y)):
            raise InputError(f"{self.path}: refusing to write NaN or infinite samples")
        self._put(self.rs.push(y))

    def __exit__(self, typ, value, tb) -> bool:
        if typ is None:
            self._put(self.rs.flush())
            if self.written < self.n:
                self._put(np.zeros(self.n - self.written, np.float32))
        return self._stack.__exit__(typ, value, tb)


def chunk_plan(n: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of :meth:`AudioReader.chunks` for a signal of ``n`` samples."""
    hop = chunk - overlap
    count = 1 if n <= chunk else math.ceil((n - overlap) / hop)
    return [(i * hop, min(n, i * hop + chunk)) for i in range(count)]
