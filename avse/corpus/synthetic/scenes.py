"""Procedural pictures of the acoustic scenes of :mod:`avse.corpus.synthetic.noise`.

``render_scene(noise_type, rng, size=64)`` draws a small RGB picture (``uint8``,
shape ``(size, size, 3)``) of the place or thing that makes each noise type: a road
with cars for ``traffic``, tables and cups for ``cafe``, heads for ``babble``, a
stave with notes for ``music``, slanted streaks for ``rain``, a fan's blades, an
engine block, trees bent in the wind, and textures for the coloured noises. Every
picture varies at random (positions, counts, sizes, colours, brightness, pixel
noise) from the stream ``rng``, so that an image encoder must learn the layout of a
scene rather than one drawing. Pictures depend only on the arguments: the training
stage and the test-time conditioning draw them from different seeds
(:func:`avse.utils.seeding.utt_rng`).

Use ``SCENES.get(name)`` for one drawer or :func:`render_scene`.
"""
from __future__ import annotations

import numpy as np

from avse.errors import InputError
from avse.utils.registry import Registry

SCENES = Registry("scene picture")


# ------------------------------------------------------------------ drawing helpers
class Canvas:
    """A float RGB canvas in [0, 1], ``(size, size, 3)``, with a few primitives."""

    def __init__(self, size: int, rng: np.random.Generator, bg):
        self.n, self.rng = int(size), rng
        self.img = np.ones((self.n, self.n, 3)) * self.jitter(bg, 0.08)
        yy, xx = np.mgrid[0:self.n, 0:self.n] / self.n
        self.yy, self.xx = yy, xx

    def jitter(self, colour, amount: float = 0.1) -> np.ndarray:
        return np.clip(np.asarray(colour, float) + self.rng.uniform(-amount, amount, 3), 0, 1)

    def fill(self, mask: np.ndarray, colour, amount: float = 0.1) -> None:
        self.img[mask] = self.jitter(colour, amount)

    def rect(self, y0, x0, y1, x1, colour, amount=0.1) -> None:
        self.fill((self.yy >= y0) & (self.yy < y1) & (self.xx >= x0) & (self.xx < x1), colour, amount)

    def disc(self, cy, cx, r, colour, amount=0.1) -> None:
        self.fill((self.yy - cy) ** 2 + (self.xx - cx) ** 2 < r * r, colour, amount)

    def line(self, y0, x0, y1, x1, width, colour, amount=0.1) -> None:
        dy, dx = y1 - y0, x1 - x0
        L2 = max(dy * dy + dx * dx, 1e-9)
        t = np.clip(((self.yy - y0) * dy + (self.xx - x0) * dx) / L2, 0, 1)
        d2 = (self.yy - y0 - t * dy) ** 2 + (self.xx - x0 - t * dx) ** 2
        self.fill(d2 < width * width, colour, amount)

    def texture(self, exponent: float, colour, strength: float = 0.5) -> None:
        """Blend in a 2-D random field whose spectrum falls as ``1/f**exponent``."""
        n = self.n
        f = np.sqrt(np.fft.fftfreq(n)[:, None] ** 2 + np.fft.fftfreq(n)[None, :] ** 2)
        f[0, 0] = 1.0
        spec = (self.rng.standard_normal((n, n)) + 1j * self.rng.standard_normal((n, n))) / f ** exponent
        field = np.real(np.fft.ifft2(spec))
        field = (field - field.mean()) / max(field.std(), 1e-9)
        self.img += strength * 0.25 * field[..., None] * self.jitter(colour, 0.1)[None, None]

    def finish(self, noise: float = 0.04) -> np.ndarray:
        img = self.img * self.rng.uniform(0.8, 1.15) + self.rng.normal(0, noise, self.img.shape)
        if self.rng.random() < 0.5:
            img = img[:, ::-1]
        return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


# ------------------------------------------------------------------- the scenes
@SCENES.register("white")
def white(c: Canvas) -> None:
    c.img[:] = c.rng.uniform(0.2, 0.8, (c.n, c.n, 1))  # grey static, like a TV with no signal


@SCENES.register("pink")
def pink(c: Canvas) -> None:
    c.img[:] = c.jitter([0.85, 0.55, 0.7])
    c.texture(1.0, [1, 1, 1], 1.2)


@SCENES.register("brown")
def brown(c: Canvas) -> None:
    c.img[:] = c.jitter([0.45, 0.3, 0.15])
    c.texture(2.0, [1, 0.8, 0.5], 1.5)


@SCENES.register("babble")
def babble(c: Canvas) -> None:
    for _ in range(int(c.rng.integers(6, 11))):  # heads and shoulders of a crowd
        cy, cx, r = _u(c.rng, 0.3, 0.8), _u(c.rng, 0.05, 0.95), _u(c.rng, 0.05, 0.09)
        body = c.jitter([0.3, 0.3, 0.6], 0.3)
        c.disc(cy + 2.4 * r, cx, 1.8 * r, body, 0.0)
        c.disc(cy, cx, r, [0.9, 0.72, 0.58], 0.15)


@SCENES.register("cafe")
def cafe(c: Canvas) -> None:
    c.rect(0.0, 0.0, 0.35, 1.0, [0.85, 0.8, 0.6])  # wall
    for _ in range(int(c.rng.integers(2, 4))):  # tables with cups
        y, x, w = _u(c.rng, 0.45, 0.8), _u(c.rng, 0.0, 0.7), _u(c.rng, 0.2, 0.3)
        c.rect(y, x, y + 0.05, x + w, [0.45, 0.25, 0.1])
        c.rect(y + 0.05, x + w / 2 - 0.02, y + 0.2, x + w / 2 + 0.02, [0.3, 0.18, 0.08])
        for k in range(int(c.rng.integers(1, 4))):
            cx = x + (k + 0.5) * w / 3
            c.rect(y - 0.06, cx - 0.025, y, cx + 0.025, [0.95, 0.95, 0.95], 0.05)
    for _ in range(int(c.rng.integers(1, 4))):
        c.disc(_u(c.rng, 0.3, 0.5), _u(c.rng, 0.1, 0.9), 0.05, [0.9, 0.72, 0.58])


@SCENES.register("traffic")
def traffic(c: Canvas) -> None:
    top, bot = _u(c.rng, 0.35, 0.5), _u(c.rng, 0.8, 0.95)
    c.rect(top, 0, bot, 1, [0.3, 0.3, 0.3])  # road
    mid = (top + bot) / 2
    for x in np.arange(_u(c.rng, 0, 0.1), 1, 0.2):  # lane markings
        c.rect(mid - 0.01, x, mid + 0.01, x + 0.1, [0.95, 0.95, 0.6], 0.05)
    for _ in range(int(c.rng.integers(1, 4))):  # cars
        lane = top + 0.05 if c.rng.random() < 0.5 else mid + 0.04
        x, w = _u(c.rng, 0.0, 0.75), _u(c.rng, 0.15, 0.25)
        col = c.rng.uniform(0, 1, 3)
        c.rect(lane, x, lane + 0.09, x + w, col, 0.0)
        c.disc(lane + 0.1, x + 0.2 * w, 0.03, [0.05, 0.05, 0.05], 0.02)
        c.disc(lane + 0.1, x + 0.8 * w, 0.03, [0.05, 0.05, 0.05], 0.02)


@SCENES.register("engine")
def engine(c: Canvas) -> None:
    c.img[:] = c.jitter([0.2, 0.2, 0.22])
    y0, x0 = _u(c.rng, 0.2, 0.35), _u(c.rng, 0.1, 0.25)
    c.rect(y0, x0, y0 + 0.45, x0 + 0.6, [0.55, 0.55, 0.58])  # block
    n = int(c.rng.integers(3, 7))
    for k in range(n):  # cylinders / pistons
        x = x0 + (k + 0.5) * 0.6 / n
        c.rect(y0 - 0.12, x - 0.03, y0, x + 0.03, [0.75, 0.75, 0.78])
    c.disc(y0 + 0.5, x0 + 0.6, _u(c.rng, 0.08, 0.14), [0.7, 0.5, 0.1])  # pulley


@SCENES.register("music")
def music(c: Canvas) -> None:
    c.img[:] = c.jitter([0.95, 0.93, 0.85], 0.05)
    y0 = _u(c.rng, 0.2, 0.45)
    for k in range(5):  # stave
        c.rect(y0 + k * 0.07, 0.03, y0 + k * 0.07 + 0.012, 0.97, [0.1, 0.1, 0.1], 0.05)
    for x in np.sort(c.rng.uniform(0.08, 0.92, int(c.rng.integers(4, 8)))):  # notes
        y = y0 + c.rng.integers(0, 9) * 0.035
        c.disc(y, x, 0.035, [0.05, 0.05, 0.05], 0.03)
        c.line(y - 0.2, x + 0.03, y, x + 0.03, 0.012, [0.05, 0.05, 0.05], 0.03)


@SCENES.register("wind")
def wind(c: Canvas) -> None:
    c.img[:] = c.jitter([0.55, 0.75, 0.95])
    c.rect(0.8, 0, 1, 1, [0.35, 0.6, 0.25])  # grass
    bend = _u(c.rng, 0.1, 0.25)
    for _ in range(int(c.rng.integers(1, 4))):  # trees bent by the wind
        x = _u(c.rng, 0.1, 0.9)
        c.line(0.8, x, 0.45, x + bend, 0.025, [0.4, 0.25, 0.1])
        c.disc(0.4, x + bend + 0.05, _u(c.rng, 0.1, 0.16), [0.2, 0.5, 0.2])
    for _ in range(int(c.rng.integers(3, 7))):  # gusts: horizontal streaks
        y, x = _u(c.rng, 0.05, 0.7), _u(c.rng, 0.0, 0.5)
        c.line(y, x, y + _u(c.rng, -0.03, 0.03), x + _u(c.rng, 0.25, 0.5), 0.008, [0.97, 0.97, 1.0], 0.03)


@SCENES.register("rain")
def rain(c: Canvas) -> None:
    c.img[:] = c.jitter([0.35, 0.38, 0.45])
    c.rect(0.0, 0.0, _u(c.rng, 0.15, 0.3), 1.0, [0.25, 0.25, 0.3])  # clouds
    slant = _u(c.rng, 0.02, 0.08)
    for _ in range(int(c.rng.integers(25, 50))):  # drops
        y, x = _u(c.rng, 0.1, 0.95), _u(c.rng, 0.0, 1.0)
        c.line(y, x, y + 0.08, x - slant, 0.008, [0.7, 0.8, 0.95], 0.05)


@SCENES.register("fan")
def fan(c: Canvas) -> None:
    c.img[:] = c.jitter([0.9, 0.9, 0.88], 0.08)
    cy, cx, r = _u(c.rng, 0.4, 0.6), _u(c.rng, 0.4, 0.6), _u(c.rng, 0.25, 0.35)
    c.disc(cy, cx, r * 1.15, [0.6, 0.62, 0.65])  # guard
    c.disc(cy, cx, r * 1.05, [0.9, 0.9, 0.9], 0.05)
    n, phase = int(c.rng.integers(3, 6)), _u(c.rng, 0, 2 * np.pi)
    blade = c.jitter([0.3, 0.45, 0.7], 0.2)
    for k in range(n):  # blades
        a = phase + 2 * np.pi * k / n
        c.disc(cy + 0.6 * r * np.sin(a), cx + 0.6 * r * np.cos(a), 0.35 * r, blade, 0.0)
    c.disc(cy, cx, 0.15 * r, [0.2, 0.2, 0.2], 0.05)


# ------------------------------------------------------------------------- entry
def render_scene(noise_type: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A random picture of ``noise_type``'s scene: ``uint8`` ``(size, size, 3)`` (RGB).

    Raises:
        InputError: unknown type (the message lists the known ones) or ``size < 16``.
    """
    if int(size) < 16:
        raise InputError(f"render_scene: size must be at least 16 pixels, got {size}")
    draw = SCENES.get(noise_type)
    c = Canvas(size, rng, [0.5, 0.5, 0.5])
    draw(c)
    return c.finish()


def image_to_tensor_layout(img: np.ndarray) -> np.ndarray:
    """``uint8`` ``(H, W, 3)`` -> ``float32`` ``(3, H, W)`` in [-1, 1] (the image encoder's input)."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise InputError(f"scene picture must be (H, W, 3) RGB, got {img.shape}")
    return (img.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0)
