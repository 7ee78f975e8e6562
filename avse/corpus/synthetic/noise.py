"""Procedural noise recordings: coloured noises and synthetic everyday scenes.

Every generator has the signature ``gen(n_samples, fs, rng, **resources)`` and
returns ``float32`` of shape ``(n_samples,)`` with unit RMS. The output depends only
on the arguments (the random stream ``rng`` included), so an instance is reproducible
from its seed. Generators ignore resources they do not use; the babble-like ones
(``babble``, ``cafe``) need ``resources["speech_pool"]``: a list of float32 speech
arrays (at ``resources.get("speech_fs", 16000)`` Hz) of speakers held apart from the
speakers the noise will be mixed with.

Noises that are non-stationary in reality are non-stationary here: talkers start and
stop, dishes clink, vehicles pass by (Doppler-swept engine tones, swelling tyre
noise, a horn now and then), an engine's speed drifts, music plays notes on a beat,
wind gusts and rain drops fall at a varying rate.

Use :func:`generate_noise` (seconds) or ``NOISES.get(name)(n, fs, rng, ...)``;
``NOISE_DESCRIPTIONS[name]`` is a one-sentence text description of each type.
"""
import math
from typing import Dict, List, Sequence

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

from avse.errors import InputError
from avse.utils.registry import Registry

NOISES = Registry("noise")

NOISE_DESCRIPTIONS: Dict[str, str] = {
    "white": "Stationary white noise with a flat spectrum, like a hiss from an untuned radio.",
    "pink": "Stationary pink noise whose power falls as 1/f, like a steady waterfall.",
    "brown": "Stationary brown noise whose power falls as 1/f^2, a deep rumble like distant surf.",
    "babble": "Babble of six to ten people talking at once, none of them intelligible.",
    "cafe": "A busy cafe: overlapping conversations, a room murmur and the clinking of cups and dishes.",
    "traffic": "Street traffic: a low rumble with cars passing by, their engine pitch falling as they "
               "go, and an occasional horn.",
    "engine": "An idling and revving engine: a harmonic hum whose pitch drifts between 30 and 120 Hz "
              "over broadband mechanical noise.",
    "music": "Synthetic instrumental music: chords and a melody of plucked harmonic notes over a "
             "kick-drum and hi-hat beat.",
    "wind": "Gusty wind: low-frequency rushing noise that swells and fades, with a faint whistle in "
            "strong gusts.",
    "rain": "Rain falling on a hard surface: dense random drop clicks over a soft hiss, heavier and "
            "lighter in turn.",
    "fan": "A ventilation fan: steady broadband airflow noise with a blade-rate hum and its harmonics.",
}


# ----------------------------------------------------------------------- helpers
def _unit(x: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-RMS float32."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    r = math.sqrt(float(np.mean(x * x))) if x.size else 0.0
    if not np.isfinite(r) or r <= 0:
        raise InputError("noise generator produced a silent or non-finite signal")
    return (x / r).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return math.sqrt(float(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _check_n(n: int, fs: int) -> None:
    if int(n) < 1:
        raise InputError(f"noise length must be at least one sample, got {n}")
    if int(fs) < 1000:
        raise InputError(f"noise sample rate must be at least 1000 Hz, got {fs}")


def colored_noise(n: int, rng: np.random.Generator, exponent: float, fs: int = 16000,
                  f_min: float = 10.0) -> np.ndarray:
    """Gaussian noise with power spectral density proportional to ``1/f**exponent``.

    Below ``f_min`` Hz the shaping is held at its ``f_min`` value (no DC drift); the DC
    bin is zeroed. Returns float64, unit RMS.
    """
    m = 1 << max(1, int(math.ceil(math.log2(max(n, 2)))))  # FFT length (power of two)
    spec = rng.standard_normal(m // 2 + 1) + 1j * rng.standard_normal(m // 2 + 1)
    f = np.fft.rfftfreq(m, 1.0 / fs)
    shape = np.maximum(f, f_min) ** (-exponent / 2.0)
    shape[0] = 0.0
    x = np.fft.irfft(spec * shape, m)[:n]
    return x / max(_rms(x), 1e-12)


def _lowpass(x: np.ndarray, fc: float, fs: int, order: int = 4) -> np.ndarray:
    return sosfilt(butter(order, min(fc, 0.45 * fs), "low", fs=fs, output="sos"), x)


def _highpass(x: np.ndarray, fc: float, fs: int, order: int = 4) -> np.ndarray:
    return sosfilt(butter(order, min(fc, 0.45 * fs), "high", fs=fs, output="sos"), x)


def _bandpass(x: np.ndarray, lo: float, hi: float, fs: int, order: int = 2) -> np.ndarray:
    hi = min(hi, 0.45 * fs)
    lo = min(lo, 0.5 * hi)
    return sosfilt(butter(order, [lo, hi], "band", fs=fs, output="sos"), x)


def smooth_random(n: int, fs: int, rng: np.random.Generator, rate_hz: float) -> np.ndarray:
    """A smooth random curve in about [-1, 1] varying at about ``rate_hz`` (float64).

    Control points every ``1/rate_hz`` seconds, interpolated with a raised cosine.
    """
    step = max(1, int(fs / rate_hz))
    k = n // step + 2
    pts = rng.uniform(-1.0, 1.0, k)
    t = np.arange(n) / step
    i = np.floor(t).astype(int)
    frac = t - i
    w = 0.5 - 0.5 * np.cos(np.pi * frac)
    return pts[i] * (1 - w) + pts[i + 1] * w


def poisson_times(n: int, fs: int, rng: np.random.Generator, rate_hz: float) -> np.ndarray:
    """Sample indices of a Poisson process of ``rate_hz`` events per second over ``n`` samples."""
    count = int(rng.poisson(rate_hz * n / fs))
    return np.sort(rng.integers(0, n, count)) if count else np.zeros(0, dtype=int)


def _add(out: np.ndarray, start: int, seg: np.ndarray) -> None:
    """Add ``seg`` into ``out`` at ``start`` (clipped to ``out``'s bounds)."""
    n = len(out)
    if start >= n or start + len(seg) <= 0:
        return
    a = max(0, start)
    b = min(n, start + len(seg))
    out[a:b] += seg[a - start:b - start]


def _decaying_partials(freqs: Sequence[float], amps: Sequence[float], decays: Sequence[float],
                       dur: int, fs: int, rng: np.random.Generator, attack: float = 0.002) -> np.ndarray:
    """Sum of exponentially decaying sinusoids (a struck or plucked sound), float64."""
    t = np.arange(dur) / fs
    y = np.zeros(dur)
    for f, a, d in zip(freqs, amps, decays):
        if f >= 0.48 * fs:
            continue
        y += a * np.exp(-t / d) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    ramp = np.minimum(1.0, t / max(attack, 1.0 / fs))
    return y * ramp


# ------------------------------------------------------------ stationary noises
@NOISES.register("white")
def white(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """Gaussian white noise."""
    _check_n(n_samples, fs)
    return _unit(rng.standard_normal(n_samples))


@NOISES.register("pink")
def pink(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """1/f noise (-3 dB per octave)."""
    _check_n(n_samples, fs)
    return _unit(colored_noise(n_samples, rng, 1.0, fs))


@NOISES.register("brown")
def brown(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """1/f^2 noise (-6 dB per octave)."""
    _check_n(n_samples, fs)
    return _unit(colored_noise(n_samples, rng, 2.0, fs))


@NOISES.register("fan")
def fan(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """Broadband airflow noise plus a blade-pass hum with harmonics; nearly stationary."""
    _check_n(n_samples, fs)
    n = n_samples
    air = _bandpass(colored_noise(n, rng, 0.7, fs), 80.0, rng.uniform(2500, 5000), fs)
    rot = rng.uniform(12.0, 25.0)  # rotations per second
    blades = int(rng.integers(3, 8))
    bpf = rot * blades * (1 + 0.004 * smooth_random(n, fs, rng, 0.3))
    phase = 2 * np.pi * np.cumsum(bpf) / fs
    hum = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k ** 1.2 for k in range(1, 7))
    am = 1 + 0.15 * np.sin(2 * np.pi * rot * np.arange(n) / fs)  # imbalance at the rotation rate
    x = air / _rms(air) + rng.uniform(0.2, 0.5) * am * hum / max(_rms(hum), 1e-12)
    return _unit(x)


# ------------------------------------------------------------------ speech-based
def _speech_pool(resources: dict, name: str, fs: int) -> List[np.ndarray]:
    pool = resources.get("speech_pool")
    if pool is None or len(pool) == 0:
        raise InputError(f"noise {name!r} needs resources['speech_pool']: a non-empty list of "
                         "speech arrays (float32, 16 kHz) of speakers held apart from the test speakers")
    src_fs = int(resources.get("speech_fs", 16000))
    out = []
    for i, x in enumerate(pool):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)) or not np.any(x):
            raise InputError(f"noise {name!r}: speech_pool[{i}] must be a non-silent, finite 1-D array")
        if src_fs != fs:
            from avse.io.audio import resample

            x = resample(x, src_fs, fs).astype(np.float64)
        fade = min(len(x) // 4, int(0.01 * fs))  # no clicks where utterances are joined
        if fade > 0:
            ramp = np.linspace(0.0, 1.0, fade)
            x = x.copy()
            x[:fade] *= ramp
            x[-fade:] *= ramp[::-1]
        out.append(x / max(_rms(x), 1e-12))
    return out


def _talker_stream(n: int, fs: int, rng: np.random.Generator, pool: List[np.ndarray],
                   max_pause: float = 0.4) -> np.ndarray:
    """One talker: pool utterances one after another with short pauses, started mid-way."""
    parts, total = [], 0
    need = n + int(rng.integers(0, max(1, len(max(pool, key=len)))))
    while total < need:
        u = pool[int(rng.integers(len(pool)))]
        gap = np.zeros(int(rng.uniform(0.05, max_pause) * fs))
        parts += [u * 10 ** (rng.uniform(-3, 3) / 20), gap]
        total += len(u) + len(gap)
    s = np.concatenate(parts)
    off = int(rng.integers(0, len(s) - n + 1))
    return s[off:off + n]


def _babble(n: int, fs: int, rng: np.random.Generator, pool: List[np.ndarray], n_talkers: int) -> np.ndarray:
    x = np.zeros(n)
    for _ in range(n_talkers):
        x += _talker_stream(n, fs, rng, pool)
    return x


@NOISES.register("babble")
def babble(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """Six to ten simultaneous talkers drawn from ``resources['speech_pool']``."""
    _check_n(n_samples, fs)
    pool = _speech_pool(resources, "babble", fs)
    return _unit(_babble(n_samples, fs, rng, pool, int(rng.integers(6, 11))))


def _clinks(n: int, fs: int, rng: np.random.Generator, rate_hz: float) -> np.ndarray:
    """Dish and cutlery transients: inharmonic high partials with fast decays, in bursts."""
    x = np.zeros(n)
    for t0 in poisson_times(n, fs, rng, rate_hz):
        burst = int(rng.integers(1, 4))  # a clink may rattle once or twice more
        for b in range(burst):
            f0 = rng.uniform(1500.0, 4500.0)
            ratios = np.array([1.0, 2.32, 4.25, 6.63]) * rng.uniform(0.95, 1.05, 4)
            decays = rng.uniform(0.02, 0.25) / np.arange(1, 5) ** 0.7
            amps = rng.uniform(0.3, 1.0, 4) / np.arange(1, 5)
            dur = int(min(0.8, 5 * decays[0]) * fs)
            seg = _decaying_partials(f0 * ratios, amps, decays, dur, fs, rng, attack=0.0005)
            _add(x, int(t0 + b * rng.uniform(0.03, 0.15) * fs), seg * rng.uniform(0.3, 1.0))
    return x


@NOISES.register("cafe")
def cafe(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """Babble + a low room murmur + clinking dishes."""
    _check_n(n_samples, fs)
    n = n_samples
    pool = _speech_pool(resources, "cafe", fs)
    talk = _babble(n, fs, rng, pool, int(rng.integers(6, 11)))
    talk /= max(_rms(talk), 1e-12)
    murmur = _lowpass(colored_noise(n, rng, 1.0, fs), 600.0, fs)
    murmur *= (1 + 0.3 * smooth_random(n, fs, rng, 0.2)) / max(_rms(murmur), 1e-12)
    dishes = _clinks(n, fs, rng, rng.uniform(0.8, 2.5))
    d_rms = _rms(dishes)
    x = talk + 10 ** (rng.uniform(-12, -6) / 20) * murmur
    if d_rms > 0:  # peaks well above the talk, energy a small part of the total
        x += 10 ** (rng.uniform(-10, -4) / 20) * dishes / d_rms
    return _unit(x)


# --------------------------------------------------------------- scene noises
C_SOUND = 343.0


@NOISES.register("traffic")
def traffic(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """Rumble + passing vehicles (Doppler-swept engine tones, tyre noise swells) + horns."""
    _check_n(n_samples, fs)
    n = n_samples
    t = np.arange(n) / fs
    rumble = _lowpass(colored_noise(n, rng, 2.0, fs, f_min=15.0), 250.0, fs)
    rumble *= (1 + 0.4 * smooth_random(n, fs, rng, 0.1)) / max(_rms(rumble), 1e-12)
    x = rumble
    cars = np.zeros(n)
    # vehicles whose closest approach falls within the signal or a few seconds around it
    margin = int(4 * fs)
    for t0 in poisson_times(n + 2 * margin, fs, rng, rng.uniform(0.15, 0.5)):
        tc = (t0 - margin) / fs
        v = rng.uniform(8.0, 22.0)  # m/s
        d = rng.uniform(3.0, 15.0)  # closest distance, m
        half = min(8.0, 6.0 * d / v + 1.5)
        a = max(0, int((tc - half) * fs))
        b = min(n, int((tc + half) * fs))
        if b - a < 16:
            continue
        tt = t[a:b] - tc
        r = np.sqrt(d ** 2 + (v * tt) ** 2)
        v_rad = v * v * tt / r  # radial velocity: negative when approaching
        f0 = rng.uniform(35.0, 110.0) * C_SOUND / (C_SOUND + v_rad)
        phase = 2 * np.pi * np.cumsum(f0) / fs
        eng = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0) / k
                  for k in range(1, 9) if k * 110.0 * 1.1 < 0.45 * fs)
        tyre = _bandpass(rng.standard_normal(b - a), rng.uniform(200, 500), rng.uniform(1500, 3500), fs)
        tyre /= max(_rms(tyre), 1e-12)
        gain = (d / r) ** 2  # swell at the closest approach (energy ~ 1/r^2)
        cars[a:b] += rng.uniform(0.5, 2.0) * gain * (0.6 * eng + tyre * rng.uniform(0.5, 1.2))
    x = x + cars
    for t0 in poisson_times(n, fs, rng, 0.03):
        dur = int(rng.uniform(0.25, 1.2) * fs)
        tt = np.arange(dur) / fs
        f1, f2 = rng.uniform(350, 480), rng.uniform(420, 560)
        tone = sum(np.sign(np.sin(2 * np.pi * f * tt)) for f in (f1, f2))
        tone = _lowpass(tone, 3500.0, fs, order=2)
        env = np.minimum(1, tt / 0.02) * np.minimum(1, (tt[-1] - tt) / 0.03 + 1e-9)
        _add(x, int(t0), rng.uniform(0.5, 2.0) * tone * env)
    return _unit(x)


@NOISES.register("engine")
def engine(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """Harmonic engine hum, fundamental drifting within 30-120 Hz, over broadband noise."""
    _check_n(n_samples, fs)
    n = n_samples
    lo, hi = 30.0, 120.0
    centre = rng.uniform(45.0, 90.0)
    drift = 0.7 * smooth_random(n, fs, rng, rng.uniform(0.05, 0.3)) + 0.3 * smooth_random(n, fs, rng, 1.0)
    f0 = np.clip(centre * 2 ** (drift * rng.uniform(0.5, 1.3)), lo, hi)
    phase = 2 * np.pi * np.cumsum(f0) / fs
    n_harm = int(rng.integers(8, 20))
    amps = rng.uniform(0.4, 1.0, n_harm) / np.arange(1, n_harm + 1) ** rng.uniform(0.5, 1.0)
    hum = np.zeros(n)
    for k in range(1, n_harm + 1):
        mask = k * f0 < 0.45 * fs
        hum += mask * amps[k - 1] * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    hum /= max(_rms(hum), 1e-12)
    # mechanical noise, pulsing with the firing (half the fundamental's phase: 4-stroke)
    mech = _lowpass(colored_noise(n, rng, 1.0, fs), rng.uniform(2000, 5000), fs)
    mech *= 1 + 0.5 * np.sin(phase / 2)
    mech /= max(_rms(mech), 1e-12)
    load = 1 + 0.3 * (f0 - lo) / (hi - lo)  # louder when revving
    return _unit(load * (hum + 10 ** (rng.uniform(-10, -3) / 20) * mech))


_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])


@NOISES.register("music")
def music(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """Chords and a melody of decaying harmonic notes in one key, over a drum beat."""
    _check_n(n_samples, fs)
    n = n_samples
    bpm = rng.uniform(80.0, 140.0)
    beat = 60.0 / bpm
    scale = _MAJOR if rng.random() < 0.6 else _MINOR
    root = int(rng.integers(45, 57))  # MIDI A2..G#3
    progression = [[0, 4, 3, 5], [0, 3, 4, 4], [5, 3, 0, 4], [0, 5, 3, 4]][int(rng.integers(4))]

    def midi(degree: int, octave: int = 0) -> float:
        o, d = divmod(degree, 7)
        return 440.0 * 2 ** ((root + 12 * (o + octave) + scale[d] - 69) / 12)

    def note(f: float, seconds: float, timbre: np.ndarray, decay: float) -> np.ndarray:
        k = np.arange(1, len(timbre) + 1)
        return _decaying_partials(f * k, timbre, decay / k ** 0.5, int(seconds * fs), fs, rng, attack=0.005)

    chord_timbre = rng.uniform(0.3, 1.0, 6) / np.arange(1, 7)
    lead_timbre = rng.uniform(0.2, 1.0, 8) / np.arange(1, 9) ** 0.8
    chords, lead, drums = np.zeros(n), np.zeros(n), np.zeros(n)
    n_beats = int(n / fs / beat) + 1
    for b in range(n_beats):
        start = int(b * beat * fs)
        bar, pos = divmod(b, 4)
        degree = progression[bar % 4]
        if pos in (0, 2):  # chord strummed on beats 1 and 3
            for j, deg in enumerate((degree, degree + 2, degree + 4)):
                _add(chords, start + int(j * 0.012 * fs), note(midi(deg), 2.2 * beat, chord_timbre, 0.6 * beat))
            _add(chords, start, 0.8 * note(midi(degree, -1), 2.2 * beat, chord_timbre[:3], 0.8 * beat))
        # melody: one or two notes per beat, mostly chord tones, rests sometimes
        for half in range(int(rng.integers(1, 3))):
            if rng.random() < 0.2:
                continue
            deg = degree + int(rng.choice([0, 2, 4, 7, 1, 3, 5], p=[.25, .2, .2, .1, .1, .08, .07]))
            dur = beat / 2 if half else beat
            _add(lead, start + int(half * beat / 2 * fs), note(midi(deg, 1), 1.5 * dur, lead_timbre, 0.4 * dur))
        # kick on 1 and 3, hi-hat on every eighth, snare on 2 and 4
        if pos in (0, 2):
            kt = np.arange(int(0.3 * fs)) / fs
            kick = np.sin(2 * np.pi * np.cumsum(50 + 80 * np.exp(-kt / 0.03)) / fs) * np.exp(-kt / 0.08)
            _add(drums, start, 1.2 * kick)
        else:
            st = int(0.15 * fs)
            snare = _highpass(rng.standard_normal(st), 1500.0, fs, 2) * np.exp(-np.arange(st) / fs / 0.04)
            _add(drums, start, 0.5 * snare)
        for e in range(2):
            ht = int(0.05 * fs)
            hat = _highpass(rng.standard_normal(ht), 6000.0, fs, 2) * np.exp(-np.arange(ht) / fs / 0.012)
            _add(drums, start + int(e * beat / 2 * fs), 0.25 * hat)
    parts = [p / max(_rms(p), 1e-12) for p in (chords, lead, drums)]
    mix = parts[0] + 10 ** (rng.uniform(-3, 3) / 20) * parts[1] + 10 ** (rng.uniform(-10, -2) / 20) * parts[2]
    return _unit(mix)


@NOISES.register("wind")
def wind(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """Low-frequency rushing noise in gusts, with a faint whistle when it blows hard."""
    _check_n(n_samples, fs)
    n = n_samples
    gust = 0.5 + 0.5 * smooth_random(n, fs, rng, rng.uniform(0.2, 0.6))
    gust = 0.15 + gust ** 2  # strong gusts are brief, calm spells long
    low = _lowpass(colored_noise(n, rng, 2.0, fs, f_min=20.0), 500.0, fs)
    mid = _bandpass(rng.standard_normal(n), 300.0, 1500.0, fs)
    low /= max(_rms(low), 1e-12)
    mid /= max(_rms(mid), 1e-12)
    x = gust * low + 0.4 * gust ** 2 * mid
    fw = rng.uniform(500.0, 1200.0) * (1 + 0.3 * gust)
    whistle = np.sin(2 * np.pi * np.cumsum(fw) / fs)
    x += rng.uniform(0.05, 0.2) * np.clip(gust - 0.6, 0, None) ** 2 * whistle
    return _unit(x)


@NOISES.register("rain")
def rain(n_samples: int, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """Random drop clicks (rate varying over time) over a pink hiss."""
    _check_n(n_samples, fs)
    n = n_samples
    rate = rng.uniform(300.0, 1200.0) * (1 + 0.6 * smooth_random(n, fs, rng, 0.15))
    # a non-homogeneous Poisson impulse train: Bernoulli per sample with p = rate/fs
    drops = rng.random(n) < rate / fs
    amp = np.where(drops, np.minimum(rng.pareto(3.0, n), 2.0) + 0.1, 0.0) * rng.choice([-1.0, 1.0], n)
    kernels = []
    for _ in range(12):  # drop sounds: short, broadly damped resonances
        dur = int(rng.uniform(0.004, 0.015) * fs)
        kernels.append(_decaying_partials([rng.uniform(800, 7000), rng.uniform(300, 3000)],
                                          [1.0, rng.uniform(0.2, 0.8)],
                                          [rng.uniform(0.0003, 0.002), rng.uniform(0.0005, 0.003)],
                                          dur, fs, rng, attack=0.0001))
    which = rng.integers(0, len(kernels), n)
    clicks = np.zeros(n)
    for i, k in enumerate(kernels):
        clicks += fftconvolve(np.where(which == i, amp, 0.0), k)[:n]
    hiss = _highpass(colored_noise(n, rng, 1.0, fs), 400.0, fs, 2)
    clicks /= max(_rms(clicks), 1e-12)
    hiss /= max(_rms(hiss), 1e-12)
    return _unit(clicks + 10 ** (rng.uniform(-8, -2) / 20) * hiss * (rate / rate.mean()) ** 0.5)


# ----------------------------------------------------------------------- entry
def generate_noise(name: str, seconds: float, fs: int, rng: np.random.Generator, **resources) -> np.ndarray:
    """``seconds`` of noise type ``name`` at ``fs`` Hz: float32 ``(N,)``, unit RMS.

    Raises:
        InputError: unknown type (the message lists the known ones), a non-positive
            length, or a missing resource (``speech_pool`` for babble-like noises).
    """
    gen = NOISES.get(name)
    n = int(round(float(seconds) * fs))
    return gen(n, int(fs), rng, **resources)


_missing = set(NOISES.names()) - set(NOISE_DESCRIPTIONS)
assert not _missing, f"noise types without a description: {_missing}"
