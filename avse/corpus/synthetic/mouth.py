"""Greyscale 88x88 mouth-region video rendered from an articulation trajectory.

The frames imitate the mouth crop of a real talking face (as produced by a lip ROI
extractor): skin with texture and soft shading (nose base and nostrils near the top
edge, nasolabial folds, philtrum, the shadow under the lower lip that moves with the
jaw), lips as filled curves (upper lip with Cupid's bow, fuller lower lip with a
highlight), a dark mouth cavity when open, upper and lower teeth rows, the tongue
body in open vowels and its tip for dental sounds, the lower lip tucked under the
upper teeth for ``f``/``v``, rounded and protruded lips for ``u:``/``w`` and spread
lips for ``i:``.

Each frame is drawn with OpenCV at twice the resolution on a canvas with a margin,
blurred slightly, and warped to the output size by a per-frame affine pose (slowly
varying translation, rotation and scale: a tracker's crop is never perfectly
stable); lighting then drifts slowly (gain and offset) and mild sensor noise is
added. All randomness comes from the ``rng`` argument, so a seed fixes the video.

Speaker identity lives in :class:`MouthAppearance` (``MouthAppearance.sample(rng)``).
"""
import functools
import math
from dataclasses import dataclass, fields
from typing import Dict, Sequence

import cv2
import numpy as np

from avse.corpus.types import VIDEO_FPS, PhonemeEvent, n_video_frames
from avse.corpus.synthetic.visemes import N_PARAMS, viseme_trajectory
from avse.errors import InputError

SIZE = 88          # output frame size (pixels); geometry is defined in these units
_MARGIN = 8        # canvas margin around the output area (output pixels)
_SS = 2            # supersampling factor of the canvas
_SHIFT = 3         # fixed-point bits for OpenCV drawing
_N_CONTOUR = 25    # points per lip contour
_CANVAS = _SS * (SIZE + 2 * _MARGIN)
_CHIN_PAD = 64     # canvas rows of padding of the moving chin-shade layer


@dataclass(frozen=True)
class MouthAppearance:
    """What a speaker's mouth region looks like (grey levels 0-255, sizes in pixels of
    the 88x88 output).

    Attributes:
        skin: skin grey level.
        skin_texture: amplitude of the skin texture (pores, blotches).
        cheek_shade: darkening toward the left/right edges (face curvature).
        lip_darkness: lips are ``skin * (1 - lip_darkness)``.
        upper_lip_shade: upper lip brightness relative to the lower lip (lit from above).
        lip_upper, lip_lower: upper/lower lip thickness at the centre.
        mouth_width: corner-to-corner width at rest.
        max_open: vertical opening at ``jaw_open = 1``.
        bow: depth of the Cupid's bow.
        mouth_x, mouth_y: mouth centre offset from the image centre / row of the centre.
        cavity: grey level of the inside of the mouth.
        teeth: grey level of the front teeth.
        tooth_h: visible height of the upper incisors.
        tongue: grey level of the tongue.
        chin_shadow: darkness of the shadow below the lower lip.
        nose_y: row of the nostrils (negative: above the crop, only the shadow shows).
        nose_shadow: darkness of the shadow under the nose.
        nostril_sep: distance between the nostrils.
        fold: darkness of the nasolabial folds.
        light_x, light_y: illumination gradients across the crop.
        noise: sensor noise standard deviation (grey levels).
        texture_seed: seed of the (fixed) skin texture.
    """

    skin: float = 150.0
    skin_texture: float = 4.0
    cheek_shade: float = 0.12
    lip_darkness: float = 0.28
    upper_lip_shade: float = 0.9
    lip_upper: float = 4.2
    lip_lower: float = 6.0
    mouth_width: float = 42.0
    max_open: float = 21.0
    bow: float = 1.0
    mouth_x: float = 0.0
    mouth_y: float = 48.0
    cavity: float = 20.0
    teeth: float = 200.0
    tooth_h: float = 4.5
    tongue: float = 110.0
    chin_shadow: float = 0.15
    nose_y: float = 4.0
    nose_shadow: float = 0.3
    nostril_sep: float = 10.0
    fold: float = 0.06
    light_x: float = 0.0
    light_y: float = 0.0
    noise: float = 1.2
    texture_seed: int = 0

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "MouthAppearance":
        """A random speaker appearance (wide ranges: speakers look clearly different).

        Levels are constrained so that lips and skin stay well above the mouth cavity
        (lips >= 80, cavity <= 32 before lighting)."""
        u = rng.uniform
        skin = u(105.0, 200.0)
        max_dark = min(0.40, 1.0 - 80.0 / skin)
        return cls(
            skin=skin,
            skin_texture=u(2.0, 6.0),
            cheek_shade=u(0.04, 0.2),
            lip_darkness=u(0.12, max_dark),
            upper_lip_shade=u(0.84, 0.96),
            lip_upper=u(3.0, 5.5),
            lip_lower=u(4.5, 8.0),
            mouth_width=u(35.0, 50.0),
            max_open=u(17.0, 25.0),
            bow=u(0.3, 1.8),
            mouth_x=u(-3.0, 3.0),
            mouth_y=u(44.0, 52.0),
            cavity=u(8.0, 32.0),
            teeth=u(150.0, 235.0),
            tooth_h=u(3.5, 5.5),
            tongue=u(85.0, 140.0),
            chin_shadow=u(0.06, 0.25),
            nose_y=u(-8.0, 12.0),
            nose_shadow=u(0.12, 0.4),
            nostril_sep=u(8.0, 13.0),
            fold=u(0.02, 0.12),
            light_x=u(-0.2, 0.2),
            light_y=u(-0.1, 0.1),
            noise=u(0.7, 1.8),
            texture_seed=int(rng.integers(2 ** 31 - 1)),
        )

    def as_dict(self) -> Dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def lip(self) -> float:
        """Grey level of the lower lip."""
        return self.skin * (1.0 - self.lip_darkness)


# ---------------------------------------------------------------- static layers

def _face_grid(n: int):
    """Face coordinates (output pixels, unposed) of the canvas pixel centres."""
    c = (np.arange(n) + 0.5) / _SS - _MARGIN
    return np.meshgrid(c, c)  # x, y


@functools.lru_cache(maxsize=32)
def _static_layers(app: MouthAppearance):
    """(skin background uint8 canvas, chin-shade multiplier uint8 (scale 1/200) with
    _CHIN_PAD extra rows on top) for an appearance."""
    x, y = _face_grid(_CANVAS)
    cx, cy = SIZE / 2 + app.mouth_x, app.mouth_y
    rng = np.random.default_rng(app.texture_seed)
    half = app.mouth_width / 2
    g = np.ones_like(x)
    g *= 1.0 - app.cheek_shade * ((x - cx) / 44.0) ** 2
    # nose base: soft shadow band under the nose, nostrils
    g *= 1.0 - app.nose_shadow * np.exp(-((y - app.nose_y - 3.5) / 3.5) ** 2) \
        * np.exp(-((x - cx) / 12.0) ** 2)
    for side in (-1, 1):
        d = ((x - cx - side * app.nostril_sep / 2) / 3.4) ** 2 + ((y - app.nose_y) / 1.8) ** 2
        g *= 1.0 - 0.35 * np.exp(-d ** 2)
    # philtrum: a shallow groove between two faint ridges, from the nose to the lip
    top = app.nose_y + 4
    band = np.clip((y - top) / 3.0, 0, 1) * np.clip((cy - 5 - y) / 3.0, 0, 1)
    g *= 1.0 - band * (0.04 * np.exp(-((x - cx) / 2.2) ** 2)
                       - 0.02 * np.exp(-((np.abs(x - cx) - 3.5) / 1.2) ** 2))
    # nasolabial folds: soft curves from beside the nose, bending out around the corners
    for side in (-1, 1):
        y0, y1 = app.nose_y + 2, cy + 16
        tt = np.clip((y - y0) / (y1 - y0), 0, 1)
        xf = cx + side * (half + 5 + 1.5 * np.sin(np.pi * tt) + 3.0 * tt ** 2)
        inside = (y > y0) & (y < y1)
        g *= 1.0 - app.fold * inside * np.exp(-((x - xf) / 2.6) ** 2) * np.sin(np.pi * tt)
    bg = app.skin * g
    # texture: fine pores and larger blotches, fixed per speaker
    fine = cv2.GaussianBlur(rng.standard_normal(x.shape).astype(np.float32), (0, 0), 1.0)
    blot = cv2.GaussianBlur(rng.standard_normal(x.shape).astype(np.float32), (0, 0), 10.0)
    fine /= max(float(fine.std()), 1e-6)
    blot /= max(float(blot.std()), 1e-6)
    bg = bg + app.skin_texture * (0.6 * fine + 0.8 * blot)
    bg = np.clip(bg, 0, 255).astype(np.uint8)

    # chin layer (moves down with the jaw): shadow under the lower lip, lit chin below
    xc, yc = _face_grid(_CANVAS)
    yc = np.concatenate([yc[:1] - (np.arange(_CHIN_PAD, 0, -1) / _SS)[:, None], yc])[:, :1]
    yc = np.broadcast_to(yc, (_CANVAS + _CHIN_PAD, _CANVAS))
    xc = np.broadcast_to(xc[:1], yc.shape)
    ys = cy + app.lip_lower + 3.0 - 0.012 * (xc - cx) ** 2
    wx = np.exp(-((xc - cx) / (0.4 * app.mouth_width)) ** 2)
    m = 1.0 - app.chin_shadow * np.exp(-((yc - ys) / 2.5) ** 2) * wx
    m *= 1.0 + 0.05 * np.exp(-((yc - ys - 11) / 5.0) ** 2) * wx
    m *= 1.0 - 0.12 * np.clip((yc - ys - 22) / 14.0, 0, 1) * (1 - 0.5 * wx)  # under the chin
    chin = np.clip(np.round(200 * m), 0, 255).astype(np.uint8)
    return bg, chin


@functools.lru_cache(maxsize=32)
def _illumination(app: MouthAppearance, size: int) -> np.ndarray:
    """Light falling on the crop (output coordinates: the light does not move with the
    head)."""
    c = (np.arange(size) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(c, c)
    return (1.0 + app.light_x * x + app.light_y * y).astype(np.float32)


# ---------------------------------------------------------------- mouth geometry

def _smoothstep(a: float, b: float, v: float) -> float:
    t = min(max((v - a) / (b - a), 0.0), 1.0)
    return t * t * (3 - 2 * t)


_U = -np.cos(np.linspace(0.0, np.pi, _N_CONTOUR))  # -1..1, dense near the corners
# face coordinates -> fixed-point canvas pixel indices (pixel centres at integers)
_SCALE = float(_SS << _SHIFT)
_OFF = (_SS * _MARGIN - 0.5) * (1 << _SHIFT)


def _to_canvas(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Face coordinates -> int32 fixed-point canvas points for cv2 drawing."""
    pts = np.empty((np.size(x), 2))
    pts[:, 0] = x
    pts[:, 1] = y
    pts *= _SCALE
    pts += _OFF
    return np.rint(pts).astype(np.int32)


def _band(img, xs, y_a, y_b, color):
    """Fill the region between the curves ``y_a(xs)`` and ``y_b(xs)`` (face coords)."""
    n = xs.size
    pts = np.empty((2 * n, 2))
    pts[:n, 0] = xs
    pts[n:, 0] = xs[::-1]
    pts[:n, 1] = y_a
    pts[n:, 1] = y_b[::-1]
    pts *= _SCALE
    pts += _OFF
    cv2.fillPoly(img, [np.rint(pts).astype(np.int32)], float(color), cv2.LINE_AA, _SHIFT)


def _ellipse(img, x, y, ax, ay, color):
    if ax <= 0.05 or ay <= 0.05:
        return
    f = 1 << _SHIFT
    c = _to_canvas(x, y)[0]
    axes = (int(round(ax * _SS * f)), int(round(ay * _SS * f)))
    cv2.ellipse(img, (int(c[0]), int(c[1])), axes, 0.0, 0.0, 360.0, float(color), -1,
                cv2.LINE_AA, _SHIFT)


def _draw_mouth(img: np.ndarray, p: np.ndarray, app: MouthAppearance) -> float:
    """Draw the mouth for articulation ``p`` on the canvas; return the jaw drop of the
    lower lip (output pixels), which moves the chin layer."""
    jaw, spread, rnd, clo, ld, teeth_v, tongue_v = (float(v) for v in p)
    close = _smoothstep(0.15, 0.75, clo)
    lab = _smoothstep(0.15, 0.75, ld) * (1.0 - close)
    cx, cy = SIZE / 2 + app.mouth_x, app.mouth_y
    # vertical opening; labiodental: the lower lip rises to the upper teeth, which fill
    # the small opening that is left
    open_ = app.max_open * jaw * (1.0 - close)
    open_ = open_ * (1.0 - lab) + lab * 0.8 * app.tooth_h
    W = 0.5 * app.mouth_width * (1.0 + 0.16 * spread - 0.32 * rnd)
    Wi = W * (0.92 - 0.50 * rnd)
    Au = open_ * 0.28 * (1.0 - lab)
    Al = open_ - Au
    e = 0.8 - 0.45 * rnd
    Tu = app.lip_upper * (1.0 + 0.3 * rnd) * (1.0 - 0.15 * close)
    Tl = app.lip_lower * (1.0 + 0.25 * rnd) * (1.0 - 0.15 * close) * (1.0 - 0.4 * lab)
    corner = 0.15 * open_ - 1.2 * spread + 0.6 * rnd

    u = _U
    x = u * W
    s = np.clip(1.0 - (x / Wi) ** 2, 0.0, None) ** e
    base = corner * u * u
    y_top = base - Au * s                     # top of the opening (upper lip inner edge)
    y_bot = base + Al * s                     # bottom of the opening
    g = 0.3                                   # half width of the seam between the lips
    h_up = (1.0 - u * u) ** (0.6 - 0.1 * rnd)
    au = np.abs(u)
    bow = app.bow * (1.0 - 0.6 * rnd) * (np.exp(-((au - 0.25) / 0.14) ** 2)
                                         - 0.7 * np.exp(-(u / 0.09) ** 2))
    y_uo = y_top - g - (Tu + bow) * h_up
    h_lo = (1.0 - u * u) ** (0.65 - 0.15 * rnd)
    y_lo = y_bot + g + Tl * h_lo

    lip = app.lip
    skin = app.skin
    X = cx + x
    # shadows in the mouth corners, the light ridge along the upper lip border
    for side in (-1, 1):
        _ellipse(img, cx + side * (W + 0.6), cy + corner + 0.3, 1.8, 1.1,
                 skin * (1.0 - 0.2 * (1.0 - rnd)))
    cv2.polylines(img, [_to_canvas(X, cy + y_uo - 0.3)], False, float(min(255, skin * 1.06)),
                  2, cv2.LINE_AA, _SHIFT)
    # seam (visible as the dark line between closed lips)
    _band(img, X, cy + y_top - 2 * g, cy + y_bot + 2 * g, lip * 0.72)
    ch = y_bot - y_top                          # opening height along x
    ch0 = float(ch[_N_CONTOUR // 2])
    if ch0 > 0.15:
        _band(img, X, cy + y_top, cy + y_bot, app.cavity)
        if ch0 > 4.0:  # tongue body low in the mouth
            _ellipse(img, cx, cy + Al - 0.12 * ch0, 0.55 * Wi, 0.22 * ch0, app.tongue * 0.55)
        # teeth: behind the lips, so the lips drawn later hide what overshoots
        wt = min(0.36 * app.mouth_width, Wi)
        ht = teeth_v * app.tooth_h
        hu = np.minimum(ht, 0.42 * ch) * (1.0 - lab) + lab * ch
        hl = np.minimum(0.7 * ht, 0.3 * ch) * (1.0 - lab)
        sel = np.abs(x) <= wt
        if sel.sum() >= 2 and float(hu.max()) > 0.1:
            xs, yt, hs = X[sel], y_top[sel], hu[sel]
            _band(img, xs, cy + yt - 1, cy + yt + hs, app.teeth * 0.72)
            mid = np.abs(x[sel]) <= 0.5 * wt
            if mid.sum() >= 2:
                xm, ym, hm = xs[mid], yt[mid], hs[mid]
                _band(img, xm, cy + ym - 1, cy + ym + hm, app.teeth)
                c = _N_CONTOUR // 2
                gap = _to_canvas([cx, cx], [cy + y_top[c], cy + y_top[c] + float(hu[c]) - 0.2])
                cv2.line(img, tuple(gap[0].tolist()), tuple(gap[1].tolist()),
                         float(app.teeth * 0.6), 1, cv2.LINE_AA, _SHIFT)
        sel = np.abs(x) <= 0.85 * wt
        if sel.sum() >= 2 and float(hl.max()) > 0.1:
            xs, yb, hs = X[sel], y_bot[sel], hl[sel]
            _band(img, xs, cy + yb - hs, cy + yb + 1, app.teeth * 0.78)
        if tongue_v > 0.05:
            hu0, hl0 = float(hu[_N_CONTOUR // 2]), float(hl[_N_CONTOUR // 2])
            gap = max(ch0 - hu0 - hl0, 0.0)
            t_h = tongue_v * max(0.5 * gap, 0.3 * ch0)
            yc = y_top[_N_CONTOUR // 2] + hu0 + 0.5 * gap
            _ellipse(img, cx, cy + yc + 0.2 * t_h, (0.22 * Wi + 1.0) * tongue_v ** 0.5, t_h,
                     app.tongue)
    # lips: upper lip darker toward the opening, lower lip darker toward its edge
    upper = lip * app.upper_lip_shade
    _band(img, X, cy + y_uo, cy + y_top - g, upper)
    _band(img, X, cy + y_top - g - 0.4 * (y_top - g - y_uo), cy + y_top - g, upper * 0.92)
    _band(img, X, cy + y_bot + g, cy + y_lo, lip)
    _band(img, X, cy + y_lo - 0.3 * Tl * h_lo, cy + y_lo, lip * 0.93)
    hs = au <= 0.45
    if hs.sum() >= 2:  # highlight on the lower lip
        xs = X[hs]
        yb, hh = (y_bot + g)[hs], (Tl * h_lo)[hs]
        _band(img, xs, cy + yb + 0.35 * hh, cy + yb + 0.6 * hh, min(255.0, lip * 1.12))
    return Al


# ---------------------------------------------------------------- jitter

def _slow_noise(rng: np.random.Generator, n: int, sigma_frames: float) -> np.ndarray:
    """Smooth zero-mean unit-variance noise of length ``n`` (Gaussian-filtered white
    noise, correlation time about ``sigma_frames`` frames)."""
    r = int(math.ceil(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    k /= np.sqrt(np.sum(k ** 2))
    w = rng.standard_normal(n + 2 * r)
    return np.convolve(w, k, mode="valid")[:n]


def _pose_matrix(tx: float, ty: float, rot_deg: float, scale: float, cx: float, cy: float,
                 out_scale: float) -> np.ndarray:
    """Affine map from canvas pixel indices to output pixel indices."""
    a = math.radians(rot_deg)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * (scale * out_scale)
    pc = np.array([cx, cy])
    b = R @ (np.full(2, 0.5 / _SS - _MARGIN) - pc) + out_scale * (pc + np.array([tx, ty])) - 0.5
    return np.hstack([R / _SS, b[:, None]])


# ---------------------------------------------------------------- rendering

def render_mouth(traj: np.ndarray, appearance: MouthAppearance, rng: np.random.Generator,
                 size: int = SIZE, jitter: bool = True) -> np.ndarray:
    """Render a ``(T, P)`` articulation trajectory (see :mod:`avse.corpus.synthetic.visemes`) as
    ``(T, size, size)`` uint8 greyscale mouth frames.

    With ``jitter`` the crop moves slowly (about 1-2 px, 1-2 degrees, 2 % scale), the
    lighting drifts, and sensor noise is added, all drawn from ``rng``; without it the
    output is a pure function of the trajectory and the appearance.
    """
    traj = np.asarray(traj, dtype=np.float64)
    if traj.ndim != 2 or traj.shape[1] != N_PARAMS:
        raise InputError(f"articulation trajectory must have shape (T, {N_PARAMS}), "
                         f"got {traj.shape}")
    size = int(size)
    if size < 8:
        raise InputError(f"frame size must be at least 8, got {size}")
    traj = np.clip(np.nan_to_num(traj), 0.0, 1.0)
    T = traj.shape[0]
    out = np.empty((T, size, size), np.uint8)
    if T == 0:
        return out
    app = appearance
    bg, chin = _static_layers(app)
    cx, cy = SIZE / 2 + app.mouth_x, app.mouth_y
    out_scale = size / SIZE
    if jitter:
        tx = rng.normal(0, 0.8) + 0.8 * _slow_noise(rng, T, 8.0)
        ty = rng.normal(0, 0.8) + 0.6 * _slow_noise(rng, T, 8.0)
        rot = rng.normal(0, 1.0) + 1.0 * _slow_noise(rng, T, 10.0)
        scl = 1.0 + rng.normal(0, 0.02) + 0.012 * _slow_noise(rng, T, 12.0)
        gain = 1.0 + rng.normal(0, 0.04) + 0.025 * _slow_noise(rng, T, 15.0)
        offset = rng.normal(0, 3.0) + 2.0 * _slow_noise(rng, T, 15.0)
        tx, ty, rot = (np.clip(v, -4.0, 4.0) for v in (tx, ty, rot))
        scl, gain = np.clip(scl, 0.93, 1.07), np.clip(gain, 0.85, 1.15)
    else:
        tx = ty = rot = np.zeros(T)
        scl = gain = np.ones(T)
        offset = np.zeros(T)
    frames = np.empty((T, size, size), np.uint8)
    canvas = np.empty_like(bg)
    for k in range(T):
        np.copyto(canvas, bg)
        drop = _draw_mouth(canvas, traj[k], app)
        sh = int(round(min(drop, _CHIN_PAD / _SS - 1) * _SS))
        # shade of the chin, moved down with the jaw drop (faint on the lips themselves)
        cv2.multiply(canvas, chin[_CHIN_PAD - sh:_CHIN_PAD - sh + _CANVAS], canvas, 1.0 / 200)
        cv2.GaussianBlur(canvas, (5, 5), 0.9, canvas)
        M = _pose_matrix(tx[k], ty[k], rot[k], scl[k], cx, cy, out_scale)
        frames[k] = cv2.warpAffine(canvas, M, (size, size), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
    f = frames.astype(np.float32)
    f *= _illumination(app, size)[None]
    f *= gain.astype(np.float32)[:, None, None]
    f += offset.astype(np.float32)[:, None, None]
    if jitter and app.noise > 0:
        f += rng.standard_normal(f.shape, dtype=np.float32) * np.float32(app.noise)
    np.clip(np.rint(f, out=f), 0, 255, out=f)
    out[...] = f
    return out


def render_utterance(events: Sequence[PhonemeEvent], n_samples: int, fs: int,
                     appearance: MouthAppearance, seed, fps: float = VIDEO_FPS,
                     size: int = SIZE, jitter: bool = True) -> np.ndarray:
    """Mouth video in sync with ``n_samples`` of audio at ``fs`` Hz whose timed
    phonemes are ``events``: ``(n_video_frames(n_samples, fs), size, size)`` uint8."""
    n = n_video_frames(int(n_samples), int(fs), fps)
    traj = viseme_trajectory(events, n, fps=fps)
    return render_mouth(traj, appearance, np.random.default_rng(seed), size=size, jitter=jitter)
