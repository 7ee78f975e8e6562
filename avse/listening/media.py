"""Audio clips and spectrogram images of the listening page.

Levels (``normalize``): ``rms`` scales every clip to an RMS of :data:`RMS_DBFS` dBFS
(about the level of ITU-T P.56 active speech at -26 dBov), lowered where that would put
its peak above :data:`PEAK_MAX`, so that systems whose outputs differ in gain are heard
at the same loudness; ``peak`` scales the peak to :data:`PEAK_DBFS` dBFS; ``none`` keeps
the samples (clipped to [-1, 1]). A silent clip is never scaled.

Clips are 16-bit PCM, ``flac`` (lossless, about half the size; every current browser
plays it) or ``wav``.

Spectrograms: log-magnitude STFT in dB (periodic Hann window of about 32 ms, a
power of two in samples, hop a quarter of it), 0 Hz to fs/2 bottom to top, drawn with
matplotlib's ``magma`` colour map over the range ``[top - DYN_RANGE_DB, top]``, where
``top`` is given by the caller: the loudest bin of all rows of one utterance, so that
their colours compare.
"""
from typing import Tuple

import numpy as np
import soundfile as sf

from avse.errors import InputError
from avse.io.audio import save_audio

RMS_DBFS = -26.0
PEAK_DBFS = -1.0
PEAK_MAX = 0.99
DYN_RANGE_DB = 80.0
NORMALIZE = ("rms", "peak", "none")
#: --audio_format -> (soundfile format, file extension)
AUDIO_FORMATS = {"flac": ("FLAC", ".flac"), "wav": ("WAV", ".wav")}
#: spectrogram image size in pixels (width, height)
IMAGE_PX = (480, 120)


def check_options(audio_format: str, normalize: str) -> None:
    """Raise InputError unless ``audio_format`` is known and this libsndfile writes it, and
    ``normalize`` is known."""
    if normalize not in NORMALIZE:
        raise InputError(f"normalize must be one of {NORMALIZE}, got {normalize!r}")
    if audio_format not in AUDIO_FORMATS:
        raise InputError(f"audio format must be one of {sorted(AUDIO_FORMATS)}, got {audio_format!r}")
    if AUDIO_FORMATS[audio_format][0] not in sf.available_formats():
        raise InputError(f"this libsndfile ({sf.__libsndfile_version__}) cannot write "
                         f"{audio_format}; use --audio_format wav")


def level(x: np.ndarray, normalize: str) -> np.ndarray:
    """``x`` (float, [-1, 1] full scale) at the level of ``normalize`` (module doc)."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if normalize == "none" or peak == 0.0:
        return np.clip(x, -1.0, 1.0)
    if normalize == "peak":
        return x * (10 ** (PEAK_DBFS / 20) / peak)
    rms = float(np.sqrt(np.mean(x ** 2)))
    return x * min(10 ** (RMS_DBFS / 20) / rms, PEAK_MAX / peak)


def write_clip(path: str, x: np.ndarray, fs: int, audio_format: str) -> None:
    """Write ``x`` (in [-1, 1]) as 16-bit PCM ``audio_format``, atomically."""
    save_audio(path, np.clip(x, -1.0, 1.0), fs, subtype="PCM_16", fmt=AUDIO_FORMATS[audio_format][0])


def stft_db(x: np.ndarray, fs: int) -> np.ndarray:
    """Log-magnitude STFT in dB, ``(n_fft // 2 + 1, frames)`` (module doc); a clip
    shorter than one window is zero-padded to it."""
    n_fft = 1 << int(round(np.log2(0.032 * fs)))
    hop = n_fft // 4
    x = np.asarray(x, dtype=np.float64)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    n = 1 + (x.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    mag = np.abs(np.fft.rfft(x[idx] * win, axis=1)).T
    return 20 * np.log10(np.maximum(mag, 1e-10))


def colour_range(spectrograms) -> Tuple[float, float]:
    """``(vmin, vmax)`` shared by the spectrograms of one utterance (module doc)."""
    top = max((float(s.max()) for s in spectrograms), default=0.0)
    return top - DYN_RANGE_DB, top


def write_spectrogram(path: str, spec_db: np.ndarray, vmin: float, vmax: float) -> None:
    """A PNG of :data:`IMAGE_PX` pixels: the spectrogram alone (no axes), atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from avse.utils.fileio import atomic_path

    dpi = 100
    fig = Figure(figsize=(IMAGE_PX[0] / dpi, IMAGE_PX[1] / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(spec_db, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
              interpolation="nearest")
    ax.set_axis_off()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
