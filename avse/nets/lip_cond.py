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
``rel_model``), encodes the lips once with the model's lip encoder and returns a score
function (:class:`ConditionedScore`) that passes the embeddings (expanded to the batch of
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
frames without usable video take the unconditional score ``s_u`` instead of a conditional
score evaluated on partly missing or corrupted video, a state the prior sees only rarely in
training. An utterance whose frames are all reliable keeps the one-call score. This is the
frame-level counterpart of the reliability gating of audio-visual fusion (e.g. the
gated_xattn fusion): the same reliability also chooses between the conditional and the
unconditional prior.

Fallback prior (``fallback``): ``s_u`` may come from another score model of the same STFT,
sample rate and SDE, typically the audio-only prior of the recipe, instead of the
audio-visual prior with its video marked missing: the usual audio-visual fallback to an
audio-only system where the video fails. With ``rel_guidance`` the score is the
audio-visual one on reliable frames and the audio-only one where the video is missing or
unreliable (two networks, one call each, on utterances with such frames).

Separation with per-source lip conditioning (audio-visual speech separation with
diffusion posterior sampling): a prior conditioned on one talker's lips is a model of
that talker, so the ``K`` sources that a separation method (``separate``, ``joint``,
``cascade``) samples jointly from the shared prior each get the lips of their own
talker: source ``k = 1..K`` (rows ``j * K + k - 1`` of the batch ``(b * K, F, T)``, the
layout of :mod:`avse.enhance.measurement`) is conditioned on talker ``k``'s lips,
``lip.scp`` for the target and ``lip<k>.scp`` for talker ``k >= 2``
(:mod:`avse.data.sources`; stages 2-3 write them), the ``K`` conditionings padded to a
common length with the extra frames missing. Which talker is which then follows from the video: no
permutation to guess, and output ``k`` is scored against talker ``k``. The enhancer
declares how many sources it samples (``n_sources``); the binder
(:meth:`LipConditioner.for_model`) reads that many tables, and refuses with an error
naming the missing table unless ``lip_sources: target``, which conditions talker 1 only
and runs the others with the video marked missing (the unconditional score).
Classifier-free guidance applies per row, so per source.
"""
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from avse.data.sources import source_table
from avse.errors import InputError
from avse.lips.corrupt import check_degradation, degrade
from avse.lips.tables import lip_tables, load_visual
from avse.nets.fusion import align_cond, model_frame_rates
from avse.utils.seeding import stable_hash


#: ``lip_sources``: every talker conditioned on its own lips, or the target only
LIP_SOURCES = ("all", "target")

Cond = Dict[str, torch.Tensor]


def frame_rates(model: torch.nn.Module) -> Tuple[Optional[float], float]:
    """``(cond_fps, spec_fps)`` of ``model`` (:func:`avse.nets.fusion.model_frame_rates`);
    :class:`InputError` when nothing in it aligns video to STFT frames."""
    rates = model_frame_rates(model)
    if rates is None:
        raise InputError("reliability-weighted lip guidance: the model has no module that aligns video to "
                         "STFT frames (no fusion or lip_variance with cond_fps/spec_fps)")
    return rates


def frame_reliability(cond: Cond, n_frames: int, cond_fps: Optional[float], spec_fps: float) -> torch.Tensor:
    """``r (K, 1, n_frames)`` in [0, 1]: ``cond_rel (K, Tc)`` (0 where ``cond_mask`` is
    False) linearly interpolated onto the STFT frames, 0 past the end of the video."""
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


def stack_sources(conds: Sequence[Cond]) -> Cond:
    """K conditionings (``cond (1, Tc_k, D)``, ``cond_mask (1, Tc_k)``, ``cond_rel (1, Tc_k)``)
    -> one of ``(K, Tc, ...)``, ``Tc = max Tc_k``, the shorter padded at the end with zeros
    and ``cond_mask`` False (frames missing)."""
    tc = max(c["cond"].shape[1] for c in conds)
    out = {}
    for name in conds[0]:
        parts = []
        for c in conds:
            v = c[name]
            pad = v.new_zeros((v.shape[0], tc - v.shape[1]) + tuple(v.shape[2:]))
            parts.append(torch.cat([v, pad], dim=1))
        out[name] = torch.cat(parts)
    return out


class ConditionedScore:
    """``score_fn(x (B, F, T) complex, t (B,) or scalar) -> (B, F, T) complex64`` of a score
    model, with its conditioning fixed (no gradient) and bound to the batch rows.

    ``conds``: ``None`` (no conditioning: an audio-only model), or a list of ``K``
    conditionings (:func:`encode_lips`), one per source: row ``j * K + k`` of every batch
    gets conditioning ``k`` (``K = 1``: one for every row). :attr:`n_sources` is ``K``, so
    an enhancer sampling ``K`` sources knows that source ``k`` is bound to talker ``k``.
    Without gradients unless ``grad`` (enhancers that differentiate through the network,
    e.g. DPS). ``guidance`` ``w``: the classifier-free guided score ``s_u + w (s_c - s_u)``
    of every row; ``rel_guidance``: ``w`` scaled per STFT frame by each row's lip
    reliability; ``fallback``: the model of ``s_u`` (module docstring).
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, amp: bool,
                 conds: Optional[List[Cond]] = None, grad: bool = False, guidance: float = 1.0,
                 rel_guidance: bool = False, fallback: Optional[torch.nn.Module] = None):
        self.model, self.device, self.amp, self.grad = model, device, amp, grad
        self.conds, self.guidance = conds, float(guidance)
        self.rel_guidance, self.fallback = bool(rel_guidance), fallback
        self.rates = frame_rates(model) if conds is not None and self.rel_guidance else None
        self._weights = {}
        self.n_sources = 1 if conds is None else len(conds)
        if conds is not None:
            self.cond = stack_sources(conds)
            self.uncond = dict(self.cond, cond_mask=torch.zeros_like(self.cond["cond_mask"]),
                               cond_rel=torch.zeros_like(self.cond["cond_rel"]))

    def select(self, sources: Sequence[int]) -> "ConditionedScore":
        """The score of the sources ``sources`` (0-based) alone, in that order (a cascade
        restoring separated sources one by one)."""
        return ConditionedScore(self.model, self.device, self.amp, [self.conds[k] for k in sources],
                                self.grad, self.guidance, self.rel_guidance, self.fallback)

    def envelope(self, n_freq: int, n_frames: int) -> Optional[torch.Tensor]:
        """The lip-predicted speech envelope of each source, ``(K, F, T)`` float32: the
        standard deviation of a compressed-spectrogram bin that a lip-variance prior
        (:mod:`avse.nets.lip_variance`) predicts from talker ``k``'s lips; ``None`` for a
        model without one or a score function without lips."""
        lv = getattr(self.model, "lip_variance", None)
        if self.conds is None or lv is None:
            return None
        with torch.no_grad():
            out = [lv(c["cond"], c["cond_mask"], c["cond_rel"], n_freq, n_frames, 1)[0] for c in self.conds]
        return torch.stack(out).float().exp()

    def _rows(self, cond: Cond, B: int) -> Cond:
        """``(K, Tc, ...)`` -> ``(B, Tc, ...)``, row ``j * K + k`` from source ``k``."""
        K = self.n_sources
        if B % K:
            raise InputError(f"a score function of {K} lip-conditioned sources got a batch of {B} rows, "
                             f"not a multiple of {K}")
        return {n: v.unsqueeze(0).expand(B // K, *v.shape).reshape(B, *v.shape[1:]) for n, v in cond.items()}

    def _frame_weight(self, T: int, B: int):
        """``w r`` per row ``(B, 1, T)``; ``None`` when every frame of every source is fully
        reliable, ``0.0`` when none is or ``w = 0`` (one call either way)."""
        if T not in self._weights:
            r, w = frame_reliability(self.cond, T, *self.rates), self.guidance
            self._weights[T] = None if bool((r >= 1.0).all()) else \
                0.0 if w == 0 or not bool((r > 0).any()) else w * r
        wt = self._weights[T]
        if wt is None or isinstance(wt, float):
            return wt
        return self._rows({"r": wt}, B)["r"]

    def _call(self, x, t, kw, net=None):
        with torch.set_grad_enabled(self.grad and torch.is_grad_enabled()), \
                torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            s = (self.model if net is None else net)(x, t, **kw)
        return s.to(torch.complex64) if s.dtype != torch.complex64 else s

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        if self.conds is None:
            return self._call(x, t, {})
        B, w = x.shape[0], self.guidance
        wt = w if self.rates is None else self._frame_weight(x.shape[-1], B)
        if wt is None or (self.rates is None and w == 1.0):
            return self._call(x, t, self._rows(self.cond, B))
        if isinstance(wt, float) and wt == 0.0:  # the unconditional score alone
            return self._call(x, t, {}, self.fallback) if self.fallback is not None else \
                self._call(x, t, self._rows(self.uncond, B))
        if self.fallback is not None:
            s_c, s_u = self._call(x, t, self._rows(self.cond, B)), self._call(x, t, {}, self.fallback)
            return s_u + wt * (s_c - s_u)
        tt = torch.as_tensor(t, device=x.device).reshape(-1)
        tt = tt.expand(B) if tt.numel() == 1 else tt
        c, u = self._rows(self.cond, B), self._rows(self.uncond, B)
        s_c, s_u = self._call(torch.cat([x, x]), torch.cat([tt, tt]),
                              {n: torch.cat([c[n], u[n]]) for n in c}).chunk(2)
        return s_u + wt * (s_c - s_u)


def make_cond_score_fn(model: torch.nn.Module, device: torch.device, amp: bool,
                       cond=None, grad: bool = False, guidance: float = 1.0, rel_guidance: bool = False,
                       fallback: Optional[torch.nn.Module] = None) -> ConditionedScore:
    """The :class:`ConditionedScore` of ``model``: ``cond`` ``None`` (unconditioned), one
    conditioning (a dict: ``cond (1, Tc, D)``, ``cond_mask (1, Tc)``, ``cond_rel (1, Tc)``)
    expanded to every row, or a list of ``K`` (per source: row ``j * K + k`` gets
    ``cond[k]``; padded to a common ``Tc`` by :func:`stack_sources`). ``rel_guidance``,
    ``fallback``: reliability-weighted guidance and the model of its unconditional score
    (module docstring)."""
    conds = None if cond is None else (list(cond) if isinstance(cond, (list, tuple)) else [cond])
    if conds is not None and not conds:
        raise InputError("make_cond_score_fn: an empty list of conditionings")
    return ConditionedScore(model, device, amp, conds, grad, guidance, rel_guidance, fallback)


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


def set_variance_temper(model, w: float) -> None:
    """Weight ``w`` of the lip part of ``model``'s lip-variance envelope
    (:meth:`avse.nets.lip_variance.LipVariance.set_temper`); ``w = 1`` (as trained) is
    accepted by any model, another weight only by one with a ``lip_variance`` head."""
    head = getattr(model, "lip_variance", None)
    if head is None:
        if float(w) != 1.0:
            raise InputError(f"lip variance temper {w}: the model has no lip_variance head "
                             "(model_conf.lip_variance); drop lip_variance_temper")
        return
    head.set_temper(w)


class LipConditioner:
    """Per-utterance lip conditioning of an audio-visual score model, for one source or for
    each of the ``K`` sources of a separation (module docstring).

    Args:
        model: a :class:`avse.nets.score_model.ScoreModel` with a lip encoder.
        lips: ``{key: (lip path, reliability path | None)}`` (:func:`lip_tables`) of talker 1.
        device, amp: where and how the network runs.
        lip_degrade: test degradation name (``none``, ``missing50``, ``occlude``, ``shift3``, ...),
            applied to every talker's lips.
        seed: seeds the degradation per utterance (``stable_hash(seed, "lip_degrade", key)``;
            talker ``k >= 2``: ``stable_hash(seed, "lip_degrade", key, k)``).
        rel_model: a :class:`avse.lips.reliability.LipReliability` (or any callable
            ``(T, H, W) uint8 -> (T,) float32``) that replaces the tabled reliability
            by its score of the lips as they are given to the model.
        guidance: classifier-free guidance weight on the lips (1: none; module docstring).
        variance_temper: weight of the lip part of a lip-variance prior's speech envelope
            (:meth:`avse.nets.lip_variance.LipVariance.set_temper`; 1: as trained).
        source_lips: the tables of talkers 2..K of a K-source enhancer (``lip2.scp`` ..), each
            as ``lips``, or ``None`` for a talker without video (marked missing: the
            unconditional score). Empty: one source.
        rel_guidance: scale the guidance weight per frame by the lip reliability (module
            docstring): missing or unreliable frames take the unconditional score.
        fallback: the score model of the unconditional score (module docstring; ``None``:
            the audio-visual model with the video marked missing).
    """

    def __init__(self, model, lips: Dict, device: torch.device, amp: bool = False,
                 lip_degrade: str = "none", seed: int = 0, rel_model: Optional[Callable] = None,
                 guidance: float = 1.0, variance_temper: float = 1.0,
                 source_lips: Sequence[Optional[Dict]] = (), rel_guidance: bool = False,
                 fallback: Optional[torch.nn.Module] = None):
        self.rel_guidance, self.fallback = bool(rel_guidance), fallback
        self.model, self.lips, self.device, self.amp = model, lips, device, amp
        self.sources = [lips] + list(source_lips)   # talker k's table at index k - 1
        self.n_sources = len(self.sources)
        self.visual = visual_input(model)
        if self.visual == "features" and rel_model is not None:
            raise InputError("--lip_rel_model scores mouth crops; this model reads visual features "
                             "(lip_encoder features): drop --lip_rel_model")
        set_variance_temper(model, variance_temper)
        self.rel_model, self.guidance = rel_model, float(guidance)
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
                  train_lip_table: Optional[str] = None, n_sources: int = 1,
                  lip_sources: str = "all", rel_guidance: bool = False,
                  fallback: Optional[torch.nn.Module] = None) -> Optional["LipConditioner"]:
        """The conditioner of an AV model for an enhancer sampling ``n_sources`` sources,
        ``None`` for an audio-only model.

        ``lip_scp`` defaults to ``<data_dir>/<table>``: ``train_lip_table`` (the training's
        ``lip_table``), else ``lip.scp`` or, for a ``features`` encoder, ``lip_feats.scp``;
        talker ``k >= 2`` reads its per-source table next to it (``lip<k>.scp``), or, with
        ``lip_sources: target``, none (its video marked missing).
        Raises :class:`InputError` when lips are requested (``lip_scp``, ``lip_degrade``)
        for an audio-only model, or when an audio-visual model finds no lip table (naming
        the table of the talker that lacks one).
        """
        check_degradation(lip_degrade or "none")
        if lip_sources not in LIP_SOURCES:
            raise InputError(f"lip_sources must be one of {LIP_SOURCES}, got {lip_sources!r}")
        av = bool(getattr(model, "audio_visual", False))
        if not av:
            if lips_requested(lip_scp, lip_degrade) or rel_model_path or float(guidance) != 1.0 \
                    or float(variance_temper) != 1.0 or lip_sources != "all" or rel_guidance \
                    or fallback is not None:
                raise InputError(f"{model_path}: an audio-only model (trained without lip conditioning) cannot "
                                 "use lips; drop --lip_scp / --lip_degrade / --lip_rel_model / --lip_guidance / "
                                 "--lip_variance_temper / --lip_sources / --lip_rel_guidance / "
                                 "--lip_fallback_model "
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
        others = [] if lip_sources == "target" else list(range(2, int(n_sources) + 1))
        for k in others:
            path = source_table(lip_scp, k)
            if not os.path.isfile(path):
                raise InputError(f"{model_path} is an audio-visual model and the method separates {n_sources} "
                                 f"talkers, each conditioned on its own lips: talker {k} needs {path}, which is "
                                 f"missing (stage 2 copies each interferer's video as video{k}.scp, stage 3 dumps "
                                 f"its lips); or set lip_sources: target (talker 1's lips only, the others "
                                 "with the video marked missing)")
        src = (train_rel_source or "conf") if rel_source == "auto" else rel_source
        rel_model = None
        if rel_model_path:
            from avse.lips.reliability import load_lip_rel
            rel_model, src = load_lip_rel(rel_model_path, device=str(device)), "none"
        folder = os.path.dirname(lip_scp)
        source_lips = [lip_tables(folder, src, lip_scp, source=k) if k in others else None
                       for k in range(2, int(n_sources) + 1)]
        return cls(model, lip_tables(folder, src, lip_scp), device, amp, lip_degrade, seed,
                   rel_model, guidance, variance_temper, source_lips, rel_guidance, fallback)

    def conditioning(self, key: str, source: int = 1) -> Dict[str, torch.Tensor]:
        """``{"cond": (1, Tc, D) embeddings, "cond_mask": (1, Tc) bool, "cond_rel": (1, Tc)}``
        of talker ``source`` (1-based) of utterance ``key``; a talker without a table
        (``lip_sources: target``) gets talker 1's length with every frame missing."""
        if not 1 <= source <= self.n_sources:
            raise InputError(f"lip conditioning of talker {source}: the conditioner holds talkers 1..{self.n_sources}")
        if self.sources[source - 1] is None:
            lips, _ = self._load(key, 1)
            n = len(lips)
            return encode_lips(self.model, np.zeros_like(lips), np.zeros(n, bool), np.zeros(n, np.float32),
                               self.device)
        lips, rel = self._load(key, source)
        mask = np.ones(len(lips), bool)
        if self.lip_degrade == "shuffle":
            lips, mask, rel = self._other(key, len(lips), source)
        elif self.lip_degrade != "none":
            h = stable_hash(self.seed, "lip_degrade", key) if source == 1 else \
                stable_hash(self.seed, "lip_degrade", key, source)
            rng = np.random.default_rng([self.seed & 0xFFFFFFFF, h])
            lips, mask, rel = degrade(self.lip_degrade, lips, mask, rel, rng)
        if self.rel_model is not None and len(lips):
            rel = np.asarray(self.rel_model(np.ascontiguousarray(lips)), dtype=np.float32).reshape(-1)
        return encode_lips(self.model, lips, mask, rel, self.device)

    def _other(self, key: str, n: int, source: int = 1):
        """Talker ``source``'s lips of the utterance after ``key`` (sorted, cyclic), cut or
        padded to ``n`` frames (padding marked missing): ``(lips, mask, rel)``."""
        other = self.shuffled[key]
        lips, rel = self._load(other, source)
        m = min(n, len(lips))
        out = np.zeros((n,) + lips.shape[1:], lips.dtype)
        mask, r = np.zeros(n, bool), np.zeros(n, np.float32)
        out[:m], mask[:m], r[:m] = lips[:m], True, rel[:m]
        return out, mask, r

    def _load(self, key: str, source: int = 1):
        """``(lips or features, rel)`` of talker ``source`` of utterance ``key``."""
        table = self.sources[source - 1]
        if key not in table:
            raise InputError(f"utterance {key!r}: no entry in {source_table('lip.scp', source)} "
                             f"(the lips of talker {source}; the model is audio-visual)")
        dim = getattr(self.model.cond_encoder, "in_dim", None) if self.visual == "features" else None
        return load_visual(self.visual, *table[key], key=key, dim=dim)

    def score_fn(self, key: str, grad: bool = False) -> ConditionedScore:
        """The score function of utterance ``key`` with the lips bound in: those of talker 1
        for every row (one source), or talker ``k + 1``'s for rows ``j * K + k`` (``K``
        sources)."""
        conds = [self.conditioning(key, k) for k in range(1, self.n_sources + 1)]
        return make_cond_score_fn(self.model, self.device, self.amp, conds, grad, self.guidance,
                                  self.rel_guidance, self.fallback)
