"""Lip conditioning at inference: bind an utterance's lips into a modality-agnostic score_fn.

AV-UDiffSE / AV-UDiffSE+ (Ayilo, Sadeghi, Serizel, Alameda-Pineda, ICASSP 2025) are
UDiffSE / UDiffSE+ run with a lip-conditioned prior. The enhancers only see
``score_fn(x (B, F, T) complex, t (B,)) -> (B, F, T) complex``; :class:`LipConditioner`
reads the lips of one utterance (``lip.scp``, reliability from ``lip_conf.scp`` /
``lip_rel.scp``), optionally degrades them (:func:`avse.lips.corrupt.degrade`:
``missing50``, ``occlude``, ``shift3``; ``shuffle`` takes the lips of another utterance,
the next key of ``lip.scp`` in sorted order, cut or padded (missing) to this one's
length: the control that shows whether a prior uses what the lips say), optionally re-scores the reliability of the
(degraded) frames with a lip-reliability network (:mod:`avse.lips.reliability`,
``rel_model``), encodes the lips once with the model's lip encoder and returns a closure that passes the embeddings (expanded to the batch of
parallel samples) with every network call. A model whose lip encoder reads visual
features (``lip_encoder: features``, :mod:`avse.nets.lip_features`) gets the ``(T, D)``
features of ``lip_feats.scp`` (or the table it was trained on) the same way
(degradations ``missing<P>``, ``shift<N>``, ``shuffle``; no lip-reliability network).

Classifier-free guidance on the visual condition (Ho and Salimans, "Classifier-free
diffusion guidance", 2021; the prior learns the unconditional score too, since training
drops the whole video with ``visual_aug.p_drop_utt``): with a weight ``w`` the score is
``s_u + w (s_c - s_u)``, ``s_c`` with the lips and ``s_u`` with the video marked missing;
``w = 1`` is the plain conditional score (one network call), ``w > 1`` sharpens the prior
toward what the lips say (both scores in one batch of ``2B``), ``w = 0`` ignores the lips.

Reliability-weighted guidance (``rel_guidance``): the weight becomes per STFT frame,
``w r(tau)`` with ``r`` the lip reliability times presence (``cond_rel``, 0 where a frame is
missing or past the end of the video, linearly interpolated to the STFT frames), so that
frames without usable video take the unconditional score ``s_u`` (the prior the whole-video
drop trains) instead of a conditional score evaluated on partly missing or corrupted video,
a state the prior sees only rarely in training. An utterance whose frames are all reliable
keeps the one-call score. This is the frame-level counterpart of the reliability gating of
audio-visual fusion (e.g. the gated_xattn fusion): the same reliability also chooses between
the conditional and the unconditional prior.

Fallback prior (``fallback``): ``s_u`` may come from another score model of the same STFT,
sample rate and SDE, typically the audio-only prior of the recipe, instead of the
audio-visual prior with its video marked missing: the usual audio-visual fallback to an
audio-only system where the video fails. With ``rel_guidance`` the score is the
audio-visual one on reliable frames and the audio-only one where the video is missing or
unreliable (two networks, one call each, on utterances with such frames).
"""
import os
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

from avse.errors import InputError
from avse.lips.corrupt import check_degradation, degrade
from avse.lips.tables import lip_tables, load_visual
from avse.nets.fusion import align_cond
from avse.utils.seeding import stable_hash


def frame_rates(model: torch.nn.Module) -> Tuple[float, float]:
    """``(cond_fps, spec_fps)``: video and STFT frame rates (frames/s) of the first
    module of ``model`` that aligns video to STFT frames (a fusion or lip-variance head)."""
    for m in model.modules():
        if hasattr(m, "spec_fps") and hasattr(m, "cond_fps") and m.cond_fps is not None:
            return float(m.cond_fps), float(m.spec_fps)
    raise InputError("reliability-weighted lip guidance: the model has no module that aligns video to "
                     "STFT frames (no fusion or lip_variance with cond_fps/spec_fps)")


def frame_reliability(cond: Dict[str, torch.Tensor], n_frames: int, cond_fps: float, spec_fps: float
                      ) -> torch.Tensor:
    """``r (1, 1, n_frames)`` in [0, 1]: ``cond_rel`` (0 where ``cond_mask`` is False)
    linearly interpolated onto the STFT frames, 0 past the end of the video."""
    rel = cond["cond_rel"].float().clamp(0, 1)[..., None]
    r, _ = align_cond(rel, cond["cond_mask"], int(n_frames), cond_fps, spec_fps)
    return r[..., 0][:, None, :]


def check_fallback(main, fallback, label: str) -> torch.nn.Module:
    """The network of ``fallback`` (a :class:`avse.nets.storage.LoadedModel`) after checking
    that it describes the same diffusion as ``main`` (diffusion priors of one sample rate,
    STFT and SDE); :class:`InputError` naming ``label`` otherwise."""
    if main.kind != "score" or fallback.kind != "score":
        raise InputError(f"lip fallback model {label}: both it and the model must be diffusion priors")
    for what, a, b in (("sample rate", main.fs, fallback.fs),
                       ("STFT", main.frontend.config(), fallback.frontend.config()),
                       ("SDE", main.meta.get("sde"), fallback.meta.get("sde"))):
        if a != b:
            raise InputError(f"lip fallback model {label}: its {what} {b} differs from the model's {a}; the two "
                             "scores must describe the same diffusion")
    return fallback.model


def make_cond_score_fn(model: torch.nn.Module, device: torch.device, amp: bool,
                       cond: Optional[Dict[str, torch.Tensor]] = None, grad: bool = False,
                       guidance: float = 1.0, rel_guidance: bool = False,
                       fallback: Optional[torch.nn.Module] = None) -> Callable:
    """``score_fn(x (B, F, T) complex, t (B,)) -> (B, F, T) complex64``; ``cond``
    (``cond (1, Tc, D)``, ``cond_mask (1, Tc)``, ``cond_rel (1, Tc)``, fixed, no gradient)
    is expanded to ``B`` at every call. Without gradients unless ``grad`` (enhancers
    that differentiate through the network, e.g. DPS). ``guidance`` ``w``: the
    classifier-free guided score ``s_u + w (s_c - s_u)``; ``rel_guidance``: ``w`` scaled per
    STFT frame by the lip reliability; ``fallback``: the model of ``s_u`` (module docstring)."""
    use = amp and device.type == "cuda"
    w = float(guidance)
    rates, weights = (frame_rates(model) if cond is not None and rel_guidance else None), {}

    def frame_weight(T: int):
        """``w r`` ``(1, 1, T)``; ``None`` when every frame is fully reliable, ``0.0`` when none
        is or ``w = 0`` (one call either way)."""
        if T not in weights:
            r = frame_reliability(cond, T, *rates)
            weights[T] = None if bool((r >= 1.0).all()) else 0.0 if w == 0 or not bool((r > 0).any()) else w * r
        return weights[T]

    if cond is not None and (w != 1.0 or rates is not None):
        uncond = dict(cond, cond_mask=torch.zeros_like(cond["cond_mask"]),
                      cond_rel=torch.zeros_like(cond["cond_rel"]))
        pair = {k: torch.cat([cond[k], uncond[k]]) for k in cond}

    def call(x, t, kw, net=model):
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()), \
                torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use):
            s = net(x, t, **kw)
        return s.to(torch.complex64) if s.dtype != torch.complex64 else s

    def rows(c, B):
        return {k: v.expand(B, *v.shape[1:]) for k, v in c.items()}

    def score_fn(x, t):
        if cond is None:
            return call(x, t, {})
        B = x.shape[0]
        wt = w if rates is None else frame_weight(x.shape[-1])
        if wt is None or (rates is None and w == 1.0):
            return call(x, t, rows(cond, B))
        if isinstance(wt, float) and wt == 0.0:  # the unconditional score alone
            return call(x, t, {}, fallback) if fallback is not None else call(x, t, rows(uncond, B))
        if fallback is not None:
            s_c = call(x, t, rows(cond, B))
            s_u = call(x, t, {}, fallback)
            return s_u + wt * (s_c - s_u)
        tt = torch.as_tensor(t, device=x.device).reshape(-1)
        tt = tt.expand(B) if tt.numel() == 1 else tt
        kw = {k: v.repeat_interleave(B, dim=0) for k, v in pair.items()}
        s_c, s_u = call(torch.cat([x, x]), torch.cat([tt, tt]), kw).chunk(2)
        return s_u + wt * (s_c - s_u)

    return score_fn


def encode_lips(model, lips: np.ndarray, mask: np.ndarray, rel: np.ndarray, device: torch.device
                ) -> Dict[str, torch.Tensor]:
    """The conditioning of one utterance: ``lips (T, H, W)`` uint8 (or features ``(T, D)``
    float32 for a ``features`` encoder), ``mask (T,)`` bool (False:
    frame missing), ``rel (T,)`` reliability -> ``{"cond": (1, T, D) embeddings, "cond_mask":
    (1, T) bool, "cond_rel": (1, T) float32 (0 where missing)}``."""
    rel = (np.asarray(rel, np.float32) * mask).astype(np.float32)
    lt = torch.from_numpy(np.ascontiguousarray(lips))[None].to(device)
    mt = torch.from_numpy(np.ascontiguousarray(mask, dtype=bool))[None].to(device)
    with torch.no_grad():
        emb = model.encode_cond(lt, mt)
    return {"cond": emb, "cond_mask": mt, "cond_rel": torch.from_numpy(rel)[None].to(device)}


def visual_input(model) -> str:
    """``crops`` or ``features``: what the lip encoder of ``model`` reads."""
    return getattr(getattr(model, "cond_encoder", None), "input_kind", "crops")


def lips_requested(lip_scp: Optional[str], lip_degrade: str) -> bool:
    """True when the command line asks for lip conditioning explicitly."""
    return bool(lip_scp) or (lip_degrade or "none") != "none"


class LipConditioner:
    """Per-utterance lip conditioning of an audio-visual score model.

    Args:
        model: a :class:`avse.nets.score_model.ScoreModel` with a lip encoder.
        lips: ``{key: (lip path, reliability path | None)}`` (:func:`lip_tables`).
        device, amp: where and how the network runs.
        lip_degrade: test degradation name (``none``, ``missing50``, ``occlude``, ``shift3``, ...).
        seed: seeds the degradation per utterance (``stable_hash(seed, "lip_degrade", key)``).
        rel_model: a :class:`avse.lips.reliability.LipReliability` (or any callable
            ``(T, H, W) uint8 -> (T,) float32``) that replaces the tabled reliability
            by its score of the lips as they are given to the model.
        guidance: classifier-free guidance weight on the lips (1: none; module docstring).
        variance_temper: weight of the lip part of a lip-variance prior's speech envelope
            (:meth:`avse.nets.lip_variance.LipVariance.set_temper`; 1: as trained).
        rel_guidance: scale the guidance weight per frame by the lip reliability (module
            docstring): missing or unreliable frames take the unconditional score.
        fallback: the score model of the unconditional score (module docstring; ``None``:
            the audio-visual model with the video marked missing).
    """

    def __init__(self, model, lips: Dict, device: torch.device, amp: bool = False,
                 lip_degrade: str = "none", seed: int = 0, rel_model: Optional[Callable] = None,
                 guidance: float = 1.0, variance_temper: float = 1.0, rel_guidance: bool = False,
                 fallback: Optional[torch.nn.Module] = None):
        self.fallback = fallback
        self.model, self.lips, self.device, self.amp = model, lips, device, amp
        self.visual = visual_input(model)
        if self.visual == "features" and rel_model is not None:
            raise InputError("--lip_rel_model scores mouth crops; this model reads visual features "
                             "(lip_encoder features): drop --lip_rel_model")
        if float(variance_temper) != 1.0:
            head = getattr(model, "lip_variance", None)
            if head is None:
                raise InputError(f"lip variance temper {variance_temper}: the model has no lip_variance head "
                                 "(model_conf.lip_variance); drop --lip_variance_temper")
            head.set_temper(variance_temper)
        self.rel_model, self.guidance, self.rel_guidance = rel_model, float(guidance), bool(rel_guidance)
        if not self.guidance >= 0:
            raise InputError(f"lip guidance weight must be >= 0, got {guidance}")
        self.lip_degrade, self.seed = check_degradation(lip_degrade or "none"), int(seed)
        keys = sorted(self.lips)
        self.shuffled = {k: keys[(i + 1) % len(keys)] for i, k in enumerate(keys)}

    @classmethod
    def for_model(cls, model, data_dir: Optional[str], lip_scp: Optional[str], rel_source: str,
                  train_rel_source: Optional[str], device, amp: bool, lip_degrade: str, seed: int,
                  model_path: str = "model", rel_model_path: Optional[str] = None,
                  guidance: float = 1.0, variance_temper: float = 1.0,
                  train_lip_table: Optional[str] = None, rel_guidance: bool = False,
                  fallback: Optional[torch.nn.Module] = None) -> Optional["LipConditioner"]:
        """The conditioner of an AV model, ``None`` for an audio-only one.

        ``lip_scp`` defaults to ``<data_dir>/<table>``: ``train_lip_table`` (the training's
        ``lip_table``), else ``lip.scp`` or, for a ``features`` encoder, ``lip_feats.scp``.
        Raises :class:`InputError` when lips are requested (``lip_scp``, ``lip_degrade``)
        for an audio-only model, or when an audio-visual model finds no lip table.
        """
        check_degradation(lip_degrade or "none")
        av = bool(getattr(model, "audio_visual", False))
        if not av:
            if lips_requested(lip_scp, lip_degrade) or rel_model_path or float(guidance) != 1.0 \
                    or float(variance_temper) != 1.0 or rel_guidance or fallback is not None:
                raise InputError(f"{model_path}: an audio-only model (trained without lip conditioning) cannot "
                                 "use lips; drop --lip_scp / --lip_degrade / --lip_rel_model / --lip_guidance / --lip_rel_guidance / --lip_fallback_model / "
                                 "--lip_variance_temper "
                                 "or give an audio-visual model")
            return None
        from avse.nets.lip_encoder import VISUAL_INPUTS

        kind = visual_input(model)
        if not lip_scp:
            if not data_dir:
                raise InputError(f"{model_path}: an audio-visual model needs lips: give --lip_scp with --wav_scp")
            lip_scp = os.path.join(data_dir, train_lip_table or VISUAL_INPUTS[kind])
        if not os.path.isfile(lip_scp):
            how = ("dump the lips in stage 3" if kind == "crops" else
                   "list the (T, D) visual features of each utterance there, at 25 fps, or give --lip_scp")
            raise InputError(f"{model_path} is an audio-visual model (lip encoder "
                             f"{model.config['model_conf'].get('lip_encoder')}) and needs {lip_scp}, which is "
                             f"missing; {how}, or use an audio-only model")
        src = (train_rel_source or "conf") if rel_source == "auto" else rel_source
        rel_model = None
        if rel_model_path:
            from avse.lips.reliability import load_lip_rel
            rel_model, src = load_lip_rel(rel_model_path, device=str(device)), "none"
        return cls(model, lip_tables(os.path.dirname(lip_scp), src, lip_scp), device, amp, lip_degrade, seed,
                   rel_model, guidance, variance_temper, rel_guidance, fallback)

    def conditioning(self, key: str) -> Dict[str, torch.Tensor]:
        """``{"cond": (1, Tc, D) embeddings, "cond_mask": (1, Tc) bool, "cond_rel": (1, Tc)}``."""
        if key not in self.lips:
            raise InputError(f"utterance {key!r}: no entry in lip.scp (the model is audio-visual)")
        lips, rel = self._load(key)
        mask = np.ones(len(lips), bool)
        if self.lip_degrade == "shuffle":
            lips, mask, rel = self._other(key, len(lips))
        elif self.lip_degrade != "none":
            rng = np.random.default_rng([self.seed & 0xFFFFFFFF, stable_hash(self.seed, "lip_degrade", key)])
            lips, mask, rel = degrade(self.lip_degrade, lips, mask, rel, rng)
        if self.rel_model is not None and len(lips):
            rel = np.asarray(self.rel_model(np.ascontiguousarray(lips)), dtype=np.float32).reshape(-1)
        return encode_lips(self.model, lips, mask, rel, self.device)

    def _other(self, key: str, n: int):
        """The lips of the utterance after ``key`` (sorted, cyclic), cut or padded to ``n``
        frames (padding marked missing): ``(lips, mask, rel)``."""
        other = self.shuffled[key]
        lips, rel = self._load(other)
        m = min(n, len(lips))
        out = np.zeros((n,) + lips.shape[1:], lips.dtype)
        mask, r = np.zeros(n, bool), np.zeros(n, np.float32)
        out[:m], mask[:m], r[:m] = lips[:m], True, rel[:m]
        return out, mask, r

    def _load(self, key: str):
        """``(lips or features, rel)`` of utterance ``key``."""
        dim = getattr(self.model.cond_encoder, "in_dim", None) if self.visual == "features" else None
        return load_visual(self.visual, *self.lips[key], key=key, dim=dim)

    def score_fn(self, key: str, grad: bool = False) -> Callable:
        """The score function of utterance ``key`` with its lips bound in."""
        return make_cond_score_fn(self.model, self.device, self.amp, self.conditioning(key), grad,
                                  self.guidance, self.rel_guidance, self.fallback)
