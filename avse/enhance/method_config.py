"""An enhancement method's settings as one mapping: what a packed model records.

The settings are the keys of a stage-5 config (``conf/enhance_*.yaml``) that decide the
output: ``method`` (a name of :data:`avse.enhance.base.ENHANCERS`), ``method_conf`` and
the lip options of an audio-visual prior (``lip_rel_source``, ``lip_degrade``,
``lip_guidance``, ``lip_rel_guidance``, ``lip_variance_temper`` (the weight of a
lip-variance prior's lip envelope), ``lip_sources`` (the talkers of a separation
conditioned on their own lips), the model files ``lip_fallback_model`` and
``lip_rel_model``, and ``t60_estimate`` (what ``utt2t60_est`` holds: :data:`T60_ESTIMATES`)).
:func:`resolve_settings` checks them (the enhancer is built, so a bad option fails where
it is written) and fills ``method_conf`` with the constructor's
defaults, so that a recorded config keeps its meaning if a later avse changes a default
(nested mappings such as ``noise_conf`` are kept as written). :func:`merge_settings`
lays options given later (a command line) over recorded ones.
"""
from __future__ import annotations

import copy

from avse.errors import InputError
from avse.utils.config import merge_mappings

SETTINGS_KEYS = ("method", "method_conf", "lip_rel_source", "lip_degrade", "lip_guidance", "lip_rel_guidance",
                 "lip_variance_temper", "lip_fallback_model", "lip_rel_model", "lip_sources", "t60_estimate")
#: ``t60_estimate``: the method's own T60 (buddy's room fit) or the blind estimate of the input
T60_ESTIMATES = ("method", "input")
#: settings that name a model file (the audio-only fallback prior, the lip-reliability network):
#: a packed model carries these files and records their archive members instead
MODEL_FILE_KEYS = ("lip_fallback_model", "lip_rel_model")


def resolve_settings(cfg: dict, where: str) -> dict:
    """``cfg`` checked and completed (module docstring); errors name ``where``."""
    from avse.enhance import ENHANCERS
    from avse.enhance.base import constructor_defaults

    if not isinstance(cfg, dict):
        raise InputError(f"{where}: enhancement settings must be a mapping, got {type(cfg).__name__}")
    extra = sorted(set(cfg) - set(SETTINGS_KEYS))
    if extra:
        raise InputError(f"{where}: keys {extra} are not method settings (only {list(SETTINGS_KEYS)})")
    if cfg.get("t60_estimate") not in (None, *T60_ESTIMATES):
        raise InputError(f"{where}: t60_estimate must be one of {T60_ESTIMATES}, got {cfg['t60_estimate']!r}")
    method, conf = cfg.get("method"), cfg.get("method_conf") or {}
    if method not in ENHANCERS:
        raise InputError(f"{where}: method {method!r} is not one of {ENHANCERS.names()}")
    if not isinstance(conf, dict):
        raise InputError(f"{where}: method_conf must be a mapping, got {conf!r}")
    try:
        enhancer = ENHANCERS.build(method, **conf)
    except (InputError, TypeError) as e:
        raise InputError(f"{where}: method {method}: {e}") from e
    out = {k: copy.deepcopy(v) for k, v in cfg.items() if v is not None}
    out["method_conf"] = {**constructor_defaults(type(enhancer)), **copy.deepcopy(conf)}
    return out


def merge_settings(base: dict, over: dict) -> dict:
    """``over`` laid on ``base``: its ``method_conf`` keys replace those of ``base``
    (nested mappings merged), its other non-None values replace ``base``'s."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            continue
        out[k] = merge_mappings(out.get(k) or {}, v) if k == "method_conf" else copy.deepcopy(v)
    return out

