"""Dereverberation, separation and joint restoration by posterior sampling (``ENHANCERS``).

All are :class:`avse.enhance.posterior.PosteriorEnhancer` instances with the same
clean-speech prior; they differ in the operator ``A`` (see
:mod:`avse.enhance.measurement` for the domains) and their defaults:

=================  =======================================================  ==========  =========
method             operator                                                 guidance    noise
=================  =======================================================  ==========  =========
``dps_informed``   known RIR (``rir1.scp``), time-domain convolution,       dps         zero
                   ``wave`` domain (Lemercier et al., WASPAA 2023)
``buddy``          blind CTF room fitted while sampling, ``stft`` domain    dps         zero
                   (BUDDy, Moliner et al., IWAENC 2024)
``separate``       sum of ``K`` sources, ``stft`` domain (mixture           dps         zero
                   consistency; UnDiff, Iashchenko et al. 2023)
``joint``          sum of ``K`` sources each through the blind room         dps         zero
                   (shared T60/gains, own phases), ``stft`` domain
=================  =======================================================  ==========  =========

Every option of :class:`~avse.enhance.posterior.PosteriorEnhancer` (guidance, noise,
step sizes) can be changed; e.g. ``separate`` with ``guidance: [dps, projection]`` or
``domain: compressed`` with ``guidance: udiffse`` (the sum taken on compressed STFTs, an
approximation that makes the closed-form step applicable). DPS step ``zeta``: 0.01
(``dps_informed``, ``separate``), 0.03 (``buddy``, ``joint``: a weaker pull lets the room
absorb the speech and the T60 grow; on two mini_av test_reverb utterances with a
250-step prior the T60 came out 0.92 / 0.77 s at 0.01 and 0.39 / 0.43 s at 0.03 for
true 0.47 / 0.44 s). ``noise: nmf`` with a blind room is confounded (the NMF variance
takes the reverberant tail: T60 collapsed to 0.05 s there), hence ``zero`` by default.
Per-utterance inputs: the model's ``frontend``; for ``buddy``/``joint`` its rate ``fs``
(Hz); for ``dps_informed`` ``rir1`` (``(M, L)`` or ``(L,)`` float at the model's sample
rate, microphone 0 used). Statistics: ``buddy`` and ``joint`` put
the broadband T60 estimate (s) in ``last_stats["t60"]`` and the band values in
``last_stats["t60_bands"]``.
"""
from __future__ import annotations

import numpy as np
import torch

from avse.enhance.buddy import ENVELOPE_LOSSES, BlindRoom, RoomFit
from avse.enhance.measurement import Measurement
from avse.enhance.operators import Identity, TimeConvolution, relative_rir
from avse.enhance.posterior import PosteriorEnhancer
from avse.enhance.base import ENHANCERS, constructor_defaults
from avse.errors import InputError


@ENHANCERS.register("dps_informed")
class DPSInformed(PosteriorEnhancer):
    """Informed dereverberation (Lemercier et al., WASPAA 2023): DPS with ``A`` the
    convolution by the known RIR. ``align_direct``: use the RIR relative to its direct
    path (:func:`avse.enhance.operators.relative_rir`), so the estimate is aligned with
    the direct-path target of the simulation; otherwise the RIR as given."""

    needs = ("frontend", "rir1.scp")

    def __init__(self, align_direct: bool = True, n_samples: int = 1, **kw):
        super().__init__(n_samples=n_samples, **kw)
        self.align_direct = bool(align_direct)

    def _measurement(self, Xn, frontend=None, rir1=None, **aux):
        h = np.asarray(rir1, dtype=np.float32)
        if h.ndim not in (1, 2) or h.size == 0 or not np.all(np.isfinite(h)):
            raise InputError(f"dps_informed: rir1 must be a finite (L,) or (M, L) array, got {h.shape}")
        h = relative_rir(h) if self.align_direct else (h[0] if h.ndim == 2 else h)
        op = TimeConvolution(torch.from_numpy(np.ascontiguousarray(h)).to(Xn.device))
        return Measurement(op, domain="wave", frontend=frontend)


class _BlindRoomMixin:
    """Settings and statistics of the blind room (:mod:`avse.enhance.buddy`)."""

    def _room_conf(self, n_bands, filter_s, t60_init, gain_init_db, room_lr, room_updates,
                   room_period, t60_max_freq, room_loss):
        if int(room_updates) < 1 or not room_lr > 0 or room_loss not in ENVELOPE_LOSSES:
            raise InputError(f"{type(self).__name__}: need room_updates >= 1, room_lr > 0 and "
                             f"room_loss in {ENVELOPE_LOSSES}")
        self.room_loss = room_loss
        self.room_conf = dict(n_bands=int(n_bands), filter_s=float(filter_s),
                              t60_init=float(t60_init), gain_init_db=float(gain_init_db),
                              t60_max_freq=float(t60_max_freq))
        self.room_lr, self.room_updates = float(room_lr), int(room_updates)
        self.room_period, self.room = int(room_period), None

    needs = ("frontend", "fs")

    def _room_measurement(self, Xn, frontend, fs, n_sources: int) -> Measurement:
        gen = torch.Generator().manual_seed(self.seed)
        self.room = BlindRoom(frontend.n_freq, frontend.hop, int(fs), n_sources=n_sources,
                              generator=gen, device=Xn.device, **self.room_conf)
        return Measurement(self.room, n_sources=n_sources, domain="stft", frontend=frontend)

    def _extra_hooks(self, obs, Xn, generator):
        return [RoomFit(self.room, obs, Xn, n_updates=self.room_updates, lr=self.room_lr,
                        period=self.room_period, envelope_loss=self.room_loss)]

    def _extra_stats(self):
        return {"t60": self.room.t60(), "t60_bands": [round(float(v), 4) for v in self.room.t60_bands()],
                "t60_band_centres_hz": [round(float(v), 1) for v in self.room.centres]}


@ENHANCERS.register("buddy")
class BUDDy(_BlindRoomMixin, PosteriorEnhancer):
    """Blind dereverberation (BUDDy, Moliner et al., IWAENC 2024): DPS with the parametric
    CTF room of :class:`avse.enhance.buddy.BlindRoom`, fitted by Adam (``room_lr`` 0.1,
    ``room_updates`` 10 per step) on the Tweedie estimate; ``room_loss`` is the envelope
    loss of :class:`avse.enhance.buddy.RoomFit` (``power`` or ``ml``). Per-utterance
    inputs: ``frontend`` and ``fs`` (the model's sample rate, Hz)."""

    def __init__(self, n_bands: int = 26, filter_s: float = 1.0, t60_init: float = 0.5,
                 gain_init_db: float = -10.0, room_lr: float = 0.1, room_updates: int = 10,
                 room_period: int = 1, t60_max_freq: float = 4000.0, room_loss: str = "power",
                 n_samples: int = 1, zeta: float = 0.03, **kw):
        super().__init__(n_samples=n_samples, zeta=zeta, **kw)
        self._room_conf(n_bands, filter_s, t60_init, gain_init_db, room_lr, room_updates,
                        room_period, t60_max_freq, room_loss)

    def _measurement(self, Xn, frontend=None, fs=None, **aux):
        return self._room_measurement(Xn, frontend, fs, 1)


@ENHANCERS.register("separate")
class Separate(PosteriorEnhancer):
    """Unsupervised separation of ``n_sources`` speakers sampled jointly from the shared
    prior with a mixture likelihood (``y = sum_k s_k + n``). ``domain``: ``stft`` (the
    exact sum of linear STFTs) or ``compressed`` (sum of compressed STFTs: approximate,
    but linear, so the closed-form ``udiffse`` guidance applies)."""

    def __init__(self, n_sources: int = 2, domain: str = "stft", init: str = "prior",
                 n_samples: int = 1, **kw):
        super().__init__(init=init, n_samples=n_samples, **kw)
        if int(n_sources) < 2:
            raise InputError(f"separate: need n_sources >= 2, got {n_sources}")
        if domain not in ("stft", "compressed"):
            raise InputError(f"separate: domain must be 'stft' or 'compressed', got {domain!r}")
        self.n_sources, self.domain = int(n_sources), domain

    def _measurement(self, Xn, frontend=None, **aux):
        return Measurement(Identity(), n_sources=self.n_sources, domain=self.domain,
                           frontend=frontend)


@ENHANCERS.register("joint")
class Joint(_BlindRoomMixin, PosteriorEnhancer):
    """Joint denoising, dereverberation and separation (e.g. WHAMR! ``mix_both_reverb``
    to dry sources) in one pass: ``y = sum_k room_k(s_k) + n`` with the blind room
    (shared T60 and gains, a phase set per source) and NMF noise."""

    def __init__(self, n_sources: int = 2, noise: str = "zero", init: str = "prior",
                 n_samples: int = 1, n_bands: int = 26, filter_s: float = 1.0,
                 t60_init: float = 0.5, gain_init_db: float = -10.0, room_lr: float = 0.1,
                 room_updates: int = 10, room_period: int = 1, t60_max_freq: float = 4000.0,
                 room_loss: str = "power", zeta: float = 0.03, **kw):
        super().__init__(noise=noise, init=init, n_samples=n_samples, zeta=zeta, **kw)
        if int(n_sources) < 2:
            raise InputError(f"joint: need n_sources >= 2, got {n_sources}")
        self.n_sources = int(n_sources)
        self._room_conf(n_bands, filter_s, t60_init, gain_init_db, room_lr, room_updates,
                        room_period, t60_max_freq, room_loss)

    def _measurement(self, Xn, frontend=None, fs=None, **aux):
        return self._room_measurement(Xn, frontend, fs, self.n_sources)


for _cls in (DPSInformed, BUDDy, Separate, Joint):
    _cls.DEFAULTS = constructor_defaults(_cls)
