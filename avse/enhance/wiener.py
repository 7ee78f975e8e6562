"""Wiener filtering with a noise model and no speech prior: ``method: wiener``.

The power-subtraction Wiener gain ``G = max(1 - P / |Y|^2, g_min)`` per bin (Lim and
Oppenheim, "Enhancement and bandwidth compression of noisy speech", Proc. IEEE 1979),
with ``P`` the linear noise variance of any registered noise model that gives one
(``noise`` + ``noise_conf``, as the diffusion enhancers take them:
:mod:`avse.enhance.noise_choice`): ``stationary`` (``domain: linear``), ``tracker``
(:mod:`avse.enhance.tracker_noise`), ``oracle`` (the true noise of a simulated
mixture, as ``method: oracle_noise`` has it).

Why: it is the reference a posterior sampler with the same noise model must beat, and
with the CPU prior of mini_av it is the better enhancer of the two. SI-SDR in dB
(``egs/mini_av/avse1/RESULTS_noise_tracker.md``): at -5 dB in babble, cafe, music and
traffic (``test_noisy_nonstat_cond``) the learned noise tracker gives -0.08 in this gain
(blind), 0.26 / 0.31 / 0.59 told the scene by text / a picture / a noise clip, against
-1.93 to -1.90 for UDiffSE+ with the same variance and -3.67 for this gain with the
stationary model. On ``dev_reverb`` (against the direct path) the true noise plus
reverberation power averaged over 5 frames gives +3.8 dB SI-SDRi here and +1.0 dB given
to UDiffSE+ (``noise: oracle``). Followed by WPE (``conf/enhance_wiener_tracker_wpe.yaml``)
the tracker's gain is the blind dereverberation front-end of ``--task restore``.

Inputs (enhancer interface, :mod:`avse.enhance.base`): ``X`` (F, T) complex compressed STFT
of the input (frames possibly zero-padded); ``frontend``; the noise model's per-utterance
inputs (an embedding table, ``wav`` + ``noise1`` for ``oracle``). Output: the same shape and
dtype. ``last_stats``: ``nfe`` 0, ``seconds``, ``gain_mean`` (mean gain over the bins).
"""
from __future__ import annotations

import time

import torch

from avse.enhance.base import ENHANCERS, aux_keyword, constructor_defaults
from avse.enhance.noise_choice import build_noise
from avse.enhance.noise_models import decompress
from avse.errors import InputError


def power_subtraction_gain(P: torch.Tensor, Y: torch.Tensor, g_min: float = 0.0) -> torch.Tensor:
    """``max(1 - P / |Y|^2, g_min)``, at most 1: the gain (real, Y's shape) for a noise
    power ``P`` (broadcastable) and the linear STFT ``Y`` in the same units."""
    return (1.0 - P / Y.abs().pow(2).clamp_min(1e-30)).clamp(g_min, 1.0)


@ENHANCERS.register("wiener")
class NoiseModelWiener:
    """See module docstring. ``noise``, ``noise_conf``: the noise model; ``g_min``: the
    gain floor in [0, 1); ``silence``: inputs whose peak magnitude is at most this pass
    through unchanged."""

    needs_grad = False
    n_sources = 1

    def __init__(self, noise: str = "stationary", noise_conf: dict | None = None, g_min: float = 0.0,
                 silence: float = 1e-12):
        if not 0.0 <= float(g_min) < 1.0:
            raise InputError(f"wiener: need 0 <= g_min < 1, got {g_min}")
        try:
            self.noise, self.noise_model = noise, build_noise(noise, noise_conf)
        except InputError as e:
            raise InputError(f"wiener: {e}") from e
        self.g_min, self.silence = float(g_min), float(silence)
        self.needs = tuple(dict.fromkeys(("frontend",) + tuple(self.noise_model.needs)))
        self.last_stats: dict = {}

    def __call__(self, score_fn, sde, X: torch.Tensor, generator=None, frontend=None, **aux) -> torch.Tensor:
        """``X`` (F, T) complex compressed -> the same, filtered. ``score_fn``, ``sde``:
        unused (the enhancer interface)."""
        if frontend is None:
            raise InputError("wiener: needs frontend= (the model's front-end)")
        if not torch.is_tensor(X) or X.dim() != 2 or not X.is_complex():
            raise InputError(f"wiener: X must be a complex (F, T) STFT, got "
                             f"{getattr(X, 'dtype', type(X))} {tuple(getattr(X, 'shape', ()))}")
        t0 = time.perf_counter()
        scale = float(X.abs().max())
        if not scale > self.silence:
            self.last_stats = {"nfe": 0, "seconds": 0.0, "gain_mean": 1.0, "passthrough": "silent"}
            return X.clone()
        inputs = {aux_keyword(n): aux.get(aux_keyword(n)) for n in self.noise_model.needs}
        Xn = (X / scale).to(torch.complex128)
        obs = self.noise_model.observation(Xn, generator, frontend, None, **inputs)
        if not hasattr(obs, "linear_psd"):
            raise InputError(f"wiener: noise model {self.noise!r} gives no linear noise variance "
                             "(use stationary with domain: linear, tracker or oracle)")
        alpha = float(frontend.alpha)
        Y = decompress(Xn, alpha)
        P = obs.linear_psd().to(Y.real.dtype)
        G = power_subtraction_gain(P, Y, self.g_min)
        S = X * G.pow(alpha).to(X.real.dtype)    # the compressed STFT of G times the linear one
        self.last_stats = {"nfe": 0, "seconds": time.perf_counter() - t0, "gain_mean": float(G.mean())}
        return S.to(X.dtype)


NoiseModelWiener.DEFAULTS = constructor_defaults(NoiseModelWiener)
