"""Speech synthesis with timed phonemes, via espeak-ng from the ``espeakng-loader`` wheel.

The wheel bundles ``libespeak-ng`` and its data, so no system package is needed; the
library is driven through :mod:`ctypes` in synchronous mode with phoneme events
(``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, PHONEME_EVENTS)``), and the
synth callback collects the 22.05 kHz int16 samples and the phoneme events.

Determinism. espeak-ng keeps synthesis state in static variables that neither
``espeak_Terminate`` nor a new ``espeak_Initialize`` resets (the pitch-flutter
position, the automatic gain, the glottal cycle phase), and voices with breath noise
(``f2``, ``f3``, ``f5``...) draw from a random generator that espeak-ng seeds from the
clock. The same arguments would therefore give slightly different samples (even
different lengths) from call to call and from run to run. To make every call a pure
function of its arguments, each call loads a private copy of the library afresh
(``dlopen``), synthesises, and unloads it (``dlclose``), and seeds the random
generators (``espeak_ng_SetRandSeed`` and the C ``rand()``) first. The reload costs
about 1 ms per call (the data files stay in the page cache). Side effect: the
process-wide C ``rand()`` state is reseeded. Calls are serialised by a lock.

Speed (measured on the development machine, one core): about 5 ms of CPU for 2 s of
speech, i.e. roughly 8 ms per 3 s including the reload, resampling and trimming.

The private copy lives in ``$TMPDIR/avse-espeak-<uid>/`` (or ``~/.cache/avse`` when the
temporary directory cannot hold executable code): one file of about 0.7 MB, named by a
content hash, shared by all processes and never deleted.
"""
import ctypes
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from avse.corpus.types import PhonemeEvent
from avse.errors import InputError

ESPEAK_FS = 22050
"""espeak-ng's native output rate (Hz)."""

DEFAULT_MARGIN = 0.15
"""Silence kept before the first and after the last speech sample (seconds)."""

RATE_RANGE = (80, 450)  # words per minute, espeak's limits
PITCH_RANGE = (0, 100)

# espeak-ng constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_EE_OK = 0

_RAND_SEED = 12345  # seeds the C rand() used by breath noise
_STRESS_MARKS = "',%="  # stress prefixes that espeak puts on phoneme mnemonics


class _Event(ctypes.Structure):
    """``espeak_EVENT`` (speak_lib.h); 40 bytes on 64-bit Linux."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples at 22050 Hz since the start of synthesis
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),  # union; the phoneme mnemonic for phoneme events
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))

_LOG = logging.getLogger(__name__)
_LOCK = threading.RLock()
_LIB_PATH: Optional[str] = None
_UNLOAD_CHECKED = False
_VARIANTS: Optional[Tuple[str, ...]] = None


@dataclass
class Synthesis:
    """Synthesised speech.

    Attributes:
        audio: float32 samples, shape ``(N,)``, with ``DEFAULT_MARGIN`` seconds of
            silence before and after the speech.
        fs: sample rate of ``audio`` (Hz).
        phonemes: timed phonemes, in seconds of ``audio``; starts strictly increase,
            each ``end`` is the next ``start`` and the last ``end`` is the end of speech.
            Mnemonics are espeak-ng's without stress marks; pauses are ``_``.
    """

    audio: np.ndarray
    fs: int
    phonemes: List[PhonemeEvent] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.audio.shape[0] / self.fs


def data_path() -> str:
    """The espeak-ng data directory bundled with ``espeakng-loader``."""
    import espeakng_loader

    return espeakng_loader.get_data_path()


def available_variants() -> Tuple[str, ...]:
    """Names of the voice variants (files of ``voices/!v`` in the data directory)."""
    global _VARIANTS
    if _VARIANTS is None:
        d = os.path.join(data_path(), "voices", "!v")
        _VARIANTS = tuple(sorted(f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f))))
    return _VARIANTS


def _copy_library(directory: str) -> str:
    """Copy libespeak-ng into ``directory`` (named by content hash; atomic; reused)."""
    import espeakng_loader

    src = espeakng_loader.get_library_path()
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    os.makedirs(directory, exist_ok=True)
    dst = os.path.join(directory, f"libespeak-ng-{digest}.so")
    if not os.path.isfile(dst):
        tmp = f"{dst}.{os.getpid()}.{threading.get_ident()}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)  # atomic: concurrent processes write identical content
    return dst


def _library_path() -> str:
    """Path of the library to load for each call, chosen (and cached) on first use.

    A private copy, so that nobody else in the process holds it open and ``dlclose``
    really unloads it; in the temporary directory, else in ``~/.cache/avse`` (for a
    ``noexec`` /tmp), else the wheel's own file.
    """
    global _LIB_PATH
    if _LIB_PATH is not None and os.path.isfile(_LIB_PATH):
        return _LIB_PATH
    import espeakng_loader

    uid = os.getuid() if hasattr(os, "getuid") else 0
    dirs = [os.path.join(tempfile.gettempdir(), f"avse-espeak-{uid}"),
            os.path.join(os.path.expanduser("~"), ".cache", "avse")]
    for d in dirs:
        try:
            path = _copy_library(d)
            handle = ctypes.CDLL(path, mode=getattr(os, "RTLD_LOCAL", 0))._handle
            _dlclose(handle)
        except OSError as e:
            _LOG.debug("cannot use a copy of libespeak-ng in %s: %s", d, e)
            continue
        _LIB_PATH = path
        return path
    _LIB_PATH = espeakng_loader.get_library_path()
    return _LIB_PATH


def _dlclose(handle: int) -> None:
    import _ctypes

    _ctypes.dlclose(handle)


def _check_unloaded(path: str) -> None:
    """Warn (once) when ``dlclose`` left the library mapped: outputs may then drift."""
    global _UNLOAD_CHECKED
    if _UNLOAD_CHECKED:
        return
    _UNLOAD_CHECKED = True
    try:
        with open("/proc/self/maps") as f:
            mapped = any(line.rstrip().endswith(path) for line in f)
    except OSError:
        return
    if mapped:
        _LOG.warning("libespeak-ng (%s) stays loaded after dlclose; espeak-ng keeps state "
                     "between calls, so synthesis may not be exactly reproducible", path)


def _check_voice(voice: str) -> None:
    if not isinstance(voice, str) or not voice.strip():
        raise InputError(f"espeak voice must be a non-empty string, got {voice!r}")
    if voice.count("+") > 1:
        raise InputError(f"espeak voice {voice!r}: expected 'language' or 'language+variant'")
    if "+" in voice:
        base, variant = voice.split("+")
        if not base:
            raise InputError(f"espeak voice {voice!r}: missing language before '+'")
        if variant not in available_variants():
            raise InputError(f"espeak voice {voice!r}: unknown variant {variant!r}; "
                             f"available: {', '.join(available_variants())}")


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"espeak {name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise InputError(f"espeak {name} {value} outside [{lo}, {hi}]")
    return int(value)


_C = ctypes
_SIGNATURES = {  # name: (argtypes, restype)
    "espeak_Initialize": ([_C.c_int, _C.c_int, _C.c_char_p, _C.c_int], _C.c_int),
    "espeak_SetVoiceByName": ([_C.c_char_p], _C.c_int),
    "espeak_SetParameter": ([_C.c_int, _C.c_int, _C.c_int], _C.c_int),
    "espeak_SetSynthCallback": ([_CALLBACK], None),
    "espeak_Synth": ([_C.c_void_p, _C.c_size_t, _C.c_uint, _C.c_int, _C.c_uint, _C.c_uint,
                      _C.c_void_p, _C.c_void_p], _C.c_int),
    "espeak_Synchronize": ([], _C.c_int),
    "espeak_Terminate": ([], _C.c_int),
    "espeak_ng_SetRandSeed": ([_C.c_long], _C.c_int),
}


def _declare(lib: ctypes.CDLL) -> None:
    for name, (args, res) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res


def _raw_synthesis(text: str, voice: str, rate: int, pitch: int,
                   pitch_range: Optional[int]) -> Tuple[np.ndarray, List[Tuple[int, str]]]:
    """Run espeak-ng once in a freshly loaded library.

    Returns the int16 samples at 22050 Hz and ``(sample, mnemonic)`` phoneme events.
    """
    chunks: List[np.ndarray] = []
    events: List[Tuple[int, str]] = []

    def _collect(wav, n, ev):
        if n > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        if ev:
            i = 0
            while ev[i].type != _EVENT_LIST_TERMINATED:
                e = ev[i]
                if e.type == _EVENT_PHONEME:
                    name = bytes(e.id).split(b"\0", 1)[0].decode("utf-8", errors="replace")
                    events.append((int(e.sample), name))
                i += 1
        return 0

    callback = _CALLBACK(_collect)
    with _LOCK:
        path = _library_path()
        lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_LOCAL", 0))
        handle = lib._handle
        try:
            _declare(lib)

            sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path().encode(),
                                       _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
            if sr != ESPEAK_FS:
                raise InputError(f"espeak-ng failed to initialise with data {data_path()} "
                                 f"(returned {sr})")
            try:
                lib.espeak_SetSynthCallback(callback)
                if lib.espeak_SetVoiceByName(voice.encode("utf-8")) != _EE_OK:
                    raise InputError(f"espeak voice {voice!r} not found in {data_path()}")
                lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
                lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
                if pitch_range is not None:
                    lib.espeak_SetParameter(_PARAM_RANGE, pitch_range, 0)
                # breath noise: espeak-ng's own generator (seeded from the clock at
                # initialisation) and, in some builds, the C library's rand()
                lib.espeak_ng_SetRandSeed(_RAND_SEED)
                ctypes.CDLL(None).srand(_RAND_SEED)
                buf = text.encode("utf-8") + b"\0"
                err = lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                lib.espeak_Synchronize()
                if err != _EE_OK:
                    raise InputError(f"espeak-ng failed ({err}) on text {text!r}")
            finally:
                lib.espeak_Terminate()
        finally:
            del lib
            _dlclose(handle)
        _check_unloaded(path)
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return audio, events


def _speech_bounds(x: np.ndarray, events: List[Tuple[int, str]]) -> Tuple[int, int]:
    """First and one-past-last sample of speech, from energy and the phoneme onsets."""
    hop = int(0.005 * ESPEAK_FS)
    n = x.shape[0] // hop
    if n == 0:
        return 0, 0
    frames = x[: n * hop].reshape(n, hop).astype(np.float64)
    e = np.sqrt(np.mean(frames ** 2, axis=1))
    thr = max(e.max() * 10 ** (-45 / 20), 1e-4)
    active = np.flatnonzero(e > thr)
    if active.size == 0:
        return 0, 0
    start, end = int(active[0] * hop), int(min((active[-1] + 1) * hop, x.shape[0]))
    onsets = [s for s, p in events if not p.startswith("_")]
    if onsets:
        start = min(start, max(0, onsets[0]))
        end = max(end, onsets[-1] + int(0.02 * ESPEAK_FS))
    return start, end


def _clean_name(name: str) -> str:
    name = name.lstrip(_STRESS_MARKS)
    if not name or name.startswith("_"):
        return "_"
    return name


def _timed_phonemes(events: List[Tuple[int, str]], start: int, end: int,
                    offset: int) -> List[PhonemeEvent]:
    """Events inside ``[start, end)`` as :class:`PhonemeEvent` in output seconds."""
    seq: List[Tuple[int, str]] = []
    for s, name in events:
        name = _clean_name(name)
        s = min(max(s, start), end)
        if s >= end:
            continue
        if seq and s <= seq[-1][0]:
            # same onset: the earlier one has no duration (but a pause never hides a phoneme)
            if name != "_":
                seq[-1] = (seq[-1][0], name)
            continue
        if seq and name == "_" and seq[-1][1] == "_":
            continue
        seq.append((s, name))
    while seq and seq[0][1] == "_":
        seq.pop(0)
    while seq and seq[-1][1] == "_":
        seq.pop()
    out = []
    for i, (s, name) in enumerate(seq):
        e = seq[i + 1][0] if i + 1 < len(seq) else end
        out.append(PhonemeEvent((s - offset) / ESPEAK_FS, (e - offset) / ESPEAK_FS, name))
    return out


def synthesize(text: str, voice: str, rate: int, pitch: int, pitch_range: Optional[int] = None,
               fs: int = 16000, margin: float = DEFAULT_MARGIN) -> Synthesis:
    """Speak ``text`` with espeak-ng and return the audio and timed phonemes.

    Args:
        text: plain text (UTF-8; no SSML).
        voice: espeak-ng voice, ``language`` or ``language+variant`` (e.g. ``en-us+m3``).
        rate: speaking rate in words per minute (80-450; espeak's default is 175).
        pitch: base pitch, 0-100 (50 is the voice's own).
        pitch_range: intonation range, 0-100 (50 is the voice's own); ``None`` keeps it.
        fs: output sample rate (Hz); espeak's 22050 Hz output is resampled.
        margin: seconds of silence kept before and after the speech.
    Returns:
        :class:`Synthesis` with ``margin`` seconds of silence at each end; identical
        for identical arguments (in any process).
    Raises:
        InputError: empty text, unknown voice or variant, parameters out of range,
            or text that produces no speech.
    """
    if not isinstance(text, str) or not any(c.isalnum() for c in text):
        raise InputError(f"espeak text must contain something to say, got {text!r}")
    _check_voice(voice)
    rate = _check_int("rate", rate, *RATE_RANGE)
    pitch = _check_int("pitch", pitch, *PITCH_RANGE)
    if pitch_range is not None:
        pitch_range = _check_int("pitch_range", pitch_range, *PITCH_RANGE)
    fs = _check_int("fs", fs, 1000, 192000)
    if not 0 <= margin <= 5:
        raise InputError(f"margin {margin} s outside [0, 5]")

    raw, events = _raw_synthesis(" ".join(text.split()), voice, rate, pitch, pitch_range)
    x = raw.astype(np.float32) / 32768.0
    start, end = _speech_bounds(x, events)
    if end <= start:
        raise InputError(f"espeak-ng produced no speech for {text!r} (voice {voice})")
    m = int(round(margin * ESPEAK_FS))
    lo, hi = start - m, end + m
    y = np.zeros(hi - lo, np.float32)
    a, b = max(lo, 0), min(hi, x.shape[0])
    y[a - lo: b - lo] = x[a:b]
    phonemes = _timed_phonemes(events, start, end, offset=lo)

    from avse.io.audio import resample

    y = np.ascontiguousarray(resample(y, ESPEAK_FS, fs), dtype=np.float32)
    peak = float(np.max(np.abs(y)))
    if peak > 0.99:
        y *= np.float32(0.99 / peak)
    return Synthesis(audio=y, fs=fs, phonemes=phonemes)
