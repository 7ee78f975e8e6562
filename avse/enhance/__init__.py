"""Unsupervised speech enhancement with diffusion priors (UDiffSE, UDiffSE+).

Submodules: :mod:`avse.enhance.nmf` (IS-NMF noise variance), :mod:`avse.enhance.likelihood`
(observation models and the likelihood step hook), :mod:`avse.enhance.base` (the
``ENHANCERS`` registry and :class:`~avse.enhance.base.DiffusionEnhancer`, the base of every
method), :mod:`avse.enhance.udiffse` (``udiffse``, ``udiffse_plus``); issue C, restoration with the
same prior: :mod:`~avse.enhance.operators` (linear operators), :mod:`~avse.enhance.measurement`
(operators in the compressed-STFT world), :mod:`~avse.enhance.guidance` (DPS, projection),
:mod:`~avse.enhance.buddy` (blind room), :mod:`~avse.enhance.posterior` (the general
enhancer), :mod:`~avse.enhance.restoration` (``dps_informed``, ``buddy``, ``separate``,
``joint``) and :mod:`~avse.enhance.cascade` (``cascade``: methods in sequence), :mod:`~avse.enhance.wpe`
(``wpe``: weighted prediction error dereverberation, a step after the denoiser),
:mod:`~avse.enhance.oracle` (``oracle_noise``: the true noise of a simulated mixture removed,
the upper bound of a noise model), :mod:`~avse.enhance.wiener` (``wiener``: the Wiener gain of a noise
model, no prior); the VAE
baselines (issue D2): :mod:`~avse.enhance.vae_em` (``vae_mcem``, ``vae_vem``: EM with NMF
noise and a VAE prior of :mod:`avse.nets.vae`).
"""
from avse.enhance.base import ENHANCERS, DiffusionEnhancer
from avse.enhance.udiffse import UDiffSE, UDiffSEPlus  # registers them
from avse.enhance.restoration import BUDDy, DPSInformed, Joint, Separate  # registers them
from avse.enhance.cascade import Cascade  # registers it
from avse.enhance.wpe import WPE  # registers it
from avse.enhance.oracle import OracleNoise  # registers it
from avse.enhance.wiener import NoiseModelWiener  # registers it
from avse.enhance.vae_em import VAEMCEM, VAEVEM  # registers them

__all__ = ["ENHANCERS", "DiffusionEnhancer", "UDiffSE", "UDiffSEPlus", "DPSInformed", "BUDDy", "Separate", "Joint", "Cascade",
           "WPE", "OracleNoise", "NoiseModelWiener", "VAEMCEM", "VAEVEM"]
