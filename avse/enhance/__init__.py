"""Unsupervised speech enhancement with diffusion priors (UDiffSE, UDiffSE+).

Submodules: :mod:`avse.enhance.nmf` (IS-NMF noise variance), :mod:`avse.enhance.likelihood`
(observation models and the likelihood step hook), :mod:`avse.enhance.udiffse` (the
``ENHANCERS`` registry: ``udiffse``, ``udiffse_plus``).
"""
from avse.enhance.udiffse import ENHANCERS, UDiffSE, UDiffSEPlus

__all__ = ["ENHANCERS", "UDiffSE", "UDiffSEPlus"]
