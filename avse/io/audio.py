"""Audio reading and writing with validation.

Samples are ``float32`` in [-1, 1], shape ``(N,)`` for mono or ``(C, N)`` for several
channels. Every check failure raises :class:`avse.errors.InputError` naming the file
(and utterance where given).

A ``wav.scp`` value may be a path or, as in Kaldi, a shell command ending in ``|``
whose standard output is a sound file (e.g. ``sph2pipe -f wav x.sph |``).
"""
import io
import math
import os
import subprocess
from fractions import Fraction

import numpy as np
import soundfile as sf

from avse.errors import InputError
from avse.utils.fileio import atomic_path


def _label(path: str, utt: str | None) -> str:
    return f"utterance {utt!r} ({path})" if utt else str(path)


def open_source(path: str, utt: str | None = None):
    """Return something soundfile can read: a path or a BytesIO from a pipe command."""
    if path.rstrip().endswith("|"):
        cmd = path.rstrip()[:-1]
        proc = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise InputError(f"{_label(path, utt)}: command failed ({proc.returncode}): "
                             f"{proc.stderr.decode(errors='replace').strip()[:500]}")
        return io.BytesIO(proc.stdout)
    if not os.path.isfile(path):
        raise InputError(f"{_label(path, utt)}: audio file not found")
    return path


def audio_info(path: str, utt: str | None = None) -> tuple[int, int, int]:
    """Return ``(sample_rate, channels, frames)`` without reading the samples."""
    src = open_source(path, utt)
    try:
        info = sf.info(src)
    except Exception as e:  # soundfile raises RuntimeError/LibsndfileError
        raise InputError(f"{_label(path, utt)}: unreadable audio: {e}") from e
    return info.samplerate, info.channels, info.frames


def resample(x: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Polyphase resampling along the last axis (Kaiser window, scipy)."""
    if fs_in == fs_out:
        return x
    from scipy.signal import resample_poly

    r = Fraction(fs_out, fs_in)
    y = resample_poly(x, r.numerator, r.denominator, axis=-1)
    return y.astype(np.float32, copy=False)


def load_audio(path: str, fs: int | None = None, *, utt: str | None = None,
               mono: bool = True, resample_to_fs: bool = False,
               allow_silent: bool = False) -> tuple[np.ndarray, int]:
    """Read and validate an audio file.

    Args:
        path: file path or Kaldi pipe command (``... |``).
        fs: expected sample rate in Hz; ``None`` accepts any.
        utt: utterance id, used in error messages.
        mono: require one channel and return shape ``(N,)``; otherwise ``(C, N)``.
        resample_to_fs: resample to ``fs`` instead of rejecting another rate.
        allow_silent: accept an all-zero signal (noise-free references, say).
    Returns:
        ``(samples float32, sample_rate)``.
    Raises:
        InputError: missing/unreadable file, wrong rate, several channels when
            ``mono``, empty or silent audio, NaN or infinite samples.
    """
    src = open_source(path, utt)
    try:
        x, sr = sf.read(src, dtype="float32", always_2d=True)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{_label(path, utt)}: unreadable audio: {e}") from e
    x = x.T  # (C, N)
    if mono and x.shape[0] != 1:
        raise InputError(f"{_label(path, utt)}: expected mono audio, found {x.shape[0]} channels")
    if x.shape[1] == 0:
        raise InputError(f"{_label(path, utt)}: empty audio (0 samples)")
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise InputError(f"{_label(path, utt)}: {bad} NaN or infinite samples")
    if not allow_silent and not np.any(x):
        raise InputError(f"{_label(path, utt)}: audio is all zeros")
    if fs is not None and sr != fs:
        if not resample_to_fs:
            raise InputError(f"{_label(path, utt)}: sample rate {sr} Hz, expected {fs} Hz")
        x = resample(x, sr, fs)
        sr = fs
    return (x[0] if mono else x), sr


def save_audio(path: str, x: np.ndarray, fs: int, subtype: str = "PCM_16",
               clip_ok: bool = False, fmt: str = "WAV") -> None:
    """Write ``x`` (``(N,)`` or ``(C, N)``, float in [-1, 1]) atomically, as a
    ``fmt`` file (a libsndfile format: ``WAV``, ``FLAC``, ...).

    Raises:
        InputError: NaN/inf samples, or samples beyond [-1, 1] in a PCM file unless
            ``clip_ok`` (then they are clipped).
    """
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{path}: refusing to write NaN or infinite samples")
    if subtype.startswith("PCM"):
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if peak > 1.0:
            if not clip_ok:
                raise InputError(f"{path}: peak {peak:.3f} exceeds 1.0; rescale before writing")
            x = np.clip(x, -1.0, 1.0)
    data = x.T if x.ndim == 2 else x
    with atomic_path(path) as tmp:
        sf.write(tmp, data, fs, subtype=subtype, format=fmt)


def db(x: float) -> float:
    return 10.0 * math.log10(max(x, 1e-20))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
