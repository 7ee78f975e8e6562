"""Random shoebox rooms and their impulse responses (pyroomacoustics image method).

A room config is a mapping of ranges (``[lo, hi]``: uniform; a number: fixed), with
WHAMR!-like defaults (``DEFAULT_ROOM``):

==============  =============  ==========================================================
key             default        meaning
==============  =============  ==========================================================
length, width   [5.0, 10.0]    room floor dimensions (m)
height          [3.0, 4.0]     room height (m)
t60             [0.1, 1.0]     target reverberation time (s); absorption from Sabine's
                               formula (``pyroomacoustics.inverse_sabine``)
n_mics          1              microphones of a linear array (2 for WHAMR!-like)
mic_spacing     [0.15, 0.17]   distance between neighbouring microphones (m)
mic_height      [0.9, 1.8]     array centre height (m)
array_jitter    0.5            array centre: room centre + uniform(-j, j) in x and y (m)
src_dist        [0.66, 2.0]    horizontal distance of a source from the array centre (m)
src_height      [1.2, 2.0]     source height (m)
min_src_sep     0.5            minimum distance between two sources (m)
margin          0.3            minimum distance of any source or microphone to a wall (m)
max_order       null           cap on the image-source order (faster, shorter tails)
max_absorption  0.99           a T60 too short for the room (Sabine absorption > 1)
                               gives this absorption instead (the RIR is then as dry as
                               the room allows; the measured T60 says so)
t60_decay_db    30             decay range of the T60 measurement (T30, extrapolated)
==============  =============  ==========================================================

Sources are placed at a uniformly random azimuth around the array centre; a
placement that is outside the room (with the margin) or too close to another source
is drawn again. The array's orientation in the horizontal plane is uniform.
Microphone 0 is the reference microphone.
"""
import dataclasses
import json
import logging
import math
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from avse.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_ROOM: Dict[str, Any] = {
    "length": [5.0, 10.0],
    "width": [5.0, 10.0],
    "height": [3.0, 4.0],
    "t60": [0.1, 1.0],
    "n_mics": 1,
    "mic_spacing": [0.15, 0.17],
    "mic_height": [0.9, 1.8],
    "array_jitter": 0.5,
    "src_dist": [0.66, 2.0],
    "src_height": [1.2, 2.0],
    "min_src_sep": 0.5,
    "margin": 0.3,
    "max_order": None,
    "max_absorption": 0.99,
    "t60_decay_db": 30.0,
}

SOUND_SPEED = 343.0  # pyroomacoustics' default is also used for the order computation
MAX_TRIES = 1000


@dataclasses.dataclass
class RoomSpec:
    """One sampled room: everything needed to simulate its RIRs again.

    Attributes:
        dims: ``[length, width, height]`` (m).
        mics: microphone positions ``[[x, y, z], ...]`` (M), microphone 0 the reference.
        sources: source positions (K), source 0 the target.
        t60: target reverberation time (s).
        absorption: energy absorption coefficient of every wall.
        max_order: image-source order used for the reverberant RIRs.
    """

    dims: List[float]
    mics: List[List[float]]
    sources: List[List[float]]
    t60: float
    absorption: float
    max_order: int

    @property
    def n_mics(self) -> int:
        return len(self.mics)

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    def to_dict(self, digits: int = 4) -> Dict[str, Any]:
        r = lambda v: round(float(v), digits)  # noqa: E731
        return {"dims": [r(v) for v in self.dims],
                "mics": [[r(v) for v in p] for p in self.mics],
                "sources": [[r(v) for v in p] for p in self.sources],
                "t60": r(self.t60), "absorption": round(float(self.absorption), 6),
                "max_order": int(self.max_order)}

    def to_json(self) -> str:
        """Compact one-line JSON (for ``utt2room``)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RoomSpec":
        try:
            return cls(dims=[float(v) for v in d["dims"]], mics=[[float(v) for v in p] for p in d["mics"]],
                       sources=[[float(v) for v in p] for p in d["sources"]], t60=float(d["t60"]),
                       absorption=float(d["absorption"]), max_order=int(d["max_order"]))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"invalid room spec {dict(d)!r}: {e}") from e

    @classmethod
    def from_json(cls, s: str) -> "RoomSpec":
        return cls.from_dict(json.loads(s))


# --------------------------------------------------------------------- config
def _range(cfg: Mapping[str, Any], key: str, positive: bool = True) -> Tuple[float, float]:
    v = cfg[key]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        lo = hi = float(v)
    elif isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        lo, hi = float(v[0]), float(v[1])
    else:
        raise InputError(f"room config: {key} must be a number or a [min, max] pair, got {v!r}")
    if lo > hi or (positive and lo <= 0) or not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(f"room config: invalid range {key}: {v!r}")
    return lo, hi


def room_config(cfg: Mapping[str, Any] | None = None) -> Dict[str, Any]:
    """Defaults updated with ``cfg``, checked. Raises InputError naming a bad key."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULT_ROOM))
    if unknown:
        raise InputError(f"room config: unknown keys {unknown}; known: {sorted(DEFAULT_ROOM)}")
    out = {**DEFAULT_ROOM, **cfg}
    for k in ("length", "width", "height", "t60", "mic_spacing", "mic_height", "src_dist", "src_height"):
        _range(out, k)
    for k in ("array_jitter", "min_src_sep", "margin"):
        if not isinstance(out[k], (int, float)) or out[k] < 0:
            raise InputError(f"room config: {k} must be a number >= 0, got {out[k]!r}")
    if not isinstance(out["n_mics"], int) or out["n_mics"] < 1:
        raise InputError(f"room config: n_mics must be an integer >= 1, got {out['n_mics']!r}")
    mo = out["max_order"]
    if mo is not None and (not isinstance(mo, int) or mo < 0):
        raise InputError(f"room config: max_order must be null or an integer >= 0, got {mo!r}")
    if not 0 < float(out["max_absorption"]) <= 1:
        raise InputError(f"room config: max_absorption must be in (0, 1], got {out['max_absorption']!r}")
    if not float(out["t60_decay_db"]) > 0:
        raise InputError(f"room config: t60_decay_db must be positive, got {out['t60_decay_db']!r}")
    return out


def _uniform(rng: np.random.Generator, lohi: Tuple[float, float]) -> float:
    lo, hi = lohi
    return lo if lo == hi else float(rng.uniform(lo, hi))


def sabine_absorption(t60: float, dims: List[float], max_absorption: float = 0.99) -> Tuple[float, int]:
    """Wall energy absorption and image-source order for ``t60`` in a room of ``dims``.

    Uses ``pyroomacoustics.inverse_sabine``; where the room is too large for the T60
    (absorption above 1) the absorption is ``max_absorption`` and the order is that
    which covers ``c * t60`` metres of propagation.
    """
    import pyroomacoustics as pra

    try:
        a, order = pra.inverse_sabine(t60, dims)
    except ValueError:
        a = max_absorption
        radius = min(l1 * l2 / math.hypot(l1, l2) for i, l1 in enumerate(dims) for l2 in dims[i + 1:])
        order = int(math.ceil(SOUND_SPEED * t60 / radius - 1))
    return float(min(a, max_absorption)), max(0, int(order))


def sample_room(cfg: Mapping[str, Any] | None, rng: np.random.Generator, n_sources: int = 1) -> RoomSpec:
    """Draw a room, a microphone array and ``n_sources`` source positions.

    Raises:
        InputError: a bad config, or one in which the sources cannot be placed
            (e.g. a source distance larger than the room allows).
    """
    c = room_config(cfg)
    if n_sources < 1:
        raise InputError(f"need at least one source, got {n_sources}")
    dims = [_uniform(rng, _range(c, k)) for k in ("length", "width", "height")]
    margin = float(c["margin"])
    t60 = _uniform(rng, _range(c, "t60"))
    # linear array, random orientation, centre near the room centre
    m = int(c["n_mics"])
    spacing = _uniform(rng, _range(c, "mic_spacing"))
    phi = float(rng.uniform(0, 2 * np.pi))
    half = 0.5 * spacing * (m - 1)
    centre = np.array([dims[0] / 2 + rng.uniform(-1, 1) * c["array_jitter"],
                       dims[1] / 2 + rng.uniform(-1, 1) * c["array_jitter"],
                       _uniform(rng, _range(c, "mic_height"))])
    for i in range(2):
        lo, hi = margin + half, dims[i] - margin - half
        if lo > hi:
            raise InputError(f"room config: a {dims[i]:.2f} m wide room cannot hold the microphone array "
                             f"with a {margin} m margin")
        centre[i] = min(max(centre[i], lo), hi)
    centre[2] = min(max(centre[2], margin), dims[2] - margin)
    direction = np.array([math.cos(phi), math.sin(phi), 0.0])
    mics = [centre + (i - (m - 1) / 2) * spacing * direction for i in range(m)]
    sources: List[np.ndarray] = []
    d_rng, h_rng = _range(c, "src_dist"), _range(c, "src_height")
    for k in range(n_sources):
        for _ in range(MAX_TRIES):
            d = _uniform(rng, d_rng)
            az = float(rng.uniform(0, 2 * np.pi))
            h = min(_uniform(rng, h_rng), dims[2] - margin)
            p = np.array([centre[0] + d * math.cos(az), centre[1] + d * math.sin(az), h])
            inside = all(margin <= p[i] <= dims[i] - margin for i in range(2))
            apart = all(np.linalg.norm(p - q) >= c["min_src_sep"] for q in sources)
            if inside and apart:
                sources.append(p)
                break
        else:
            raise InputError(f"room config: could not place source {k + 1} at {d_rng} m from the array in a "
                             f"{dims[0]:.2f} x {dims[1]:.2f} m room with a {margin} m margin "
                             f"(after {MAX_TRIES} tries); reduce src_dist or margin")
    absorption, order = sabine_absorption(t60, dims, float(c["max_absorption"]))
    if c["max_order"] is not None:
        order = min(order, int(c["max_order"]))
    return RoomSpec(dims=[float(v) for v in dims], mics=[[float(v) for v in p] for p in mics],
                    sources=[[float(v) for v in p] for p in sources], t60=float(t60),
                    absorption=absorption, max_order=int(order))


# ----------------------------------------------------------------------- RIRs
def _room_rirs(spec: RoomSpec, fs: int, max_order: int) -> List[List[np.ndarray]]:
    """``[source][mic]`` impulse responses of the spec's room at ``max_order``."""
    import pyroomacoustics as pra

    room = pra.ShoeBox(spec.dims, fs=fs, materials=pra.Material(float(spec.absorption)),
                       max_order=int(max_order), air_absorption=False, ray_tracing=False,
                       use_rand_ism=False)
    for s in spec.sources:
        room.add_source(s)
    room.add_microphone_array(np.array(spec.mics, dtype=float).T)
    room.compute_rir()
    return [[np.asarray(room.rir[m][k], dtype=np.float64) for m in range(spec.n_mics)]
            for k in range(spec.n_sources)]


def _stack(rirs: List[List[np.ndarray]], length: int) -> np.ndarray:
    out = np.zeros((len(rirs), len(rirs[0]), length), dtype=np.float32)
    for k, per_mic in enumerate(rirs):
        for m, h in enumerate(per_mic):
            n = min(length, len(h))
            out[k, m, :n] = h[:n]
    return out


def measure_t60(h: np.ndarray, fs: int, decay_db: float = 30.0) -> float:
    """T60 (s) of an impulse response by Schroeder integration (pyroomacoustics),
    extrapolated from ``decay_db`` of decay; ``nan`` with a warning when it fails."""
    import pyroomacoustics as pra

    try:
        with np.errstate(all="ignore"):
            t = float(pra.experimental.measure_rt60(np.asarray(h, dtype=np.float64), fs=fs, decay_db=decay_db))
    except Exception as e:  # the fit can fail on degenerate responses
        log.warning("T60 measurement failed (%s: %s); recorded as nan", type(e).__name__, e)
        return float("nan")
    if not math.isfinite(t) or t <= 0:
        log.warning("T60 measurement gave %r; recorded as nan", t)
        return float("nan")
    return t


def simulate_rirs(spec: RoomSpec, fs: int, decay_db: float = 30.0) -> Tuple[np.ndarray, np.ndarray, float]:
    """Impulse responses of a sampled room.

    Returns:
        ``(rirs, direct, t60_measured)``: ``rirs`` ``(K, M, L)`` float32 (every source
        to every microphone, padded to a common length), ``direct`` ``(K, M, L)``
        float32 (the same room with ``max_order`` 0: the direct path only, with the
        same delay and attenuation), and the T60 measured on ``rirs[0, 0]`` (s, ``nan``
        with a warning when the measurement fails).
    """
    if fs < 1000:
        raise InputError(f"sample rate must be at least 1000 Hz, got {fs}")
    rev = _room_rirs(spec, fs, spec.max_order)
    dry = _room_rirs(spec, fs, 0)
    length = max(len(h) for per_mic in rev for h in per_mic)
    rirs, direct = _stack(rev, length), _stack(dry, length)
    t60 = measure_t60(rirs[0, 0], fs, decay_db) if spec.max_order > 0 else float("nan")
    return rirs, direct, t60
