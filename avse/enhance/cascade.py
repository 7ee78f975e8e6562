"""Cascades of restoration methods: ``method: cascade``.

The comparison row of joint restoration (issue C): separate first, then dereverberate
each separated source, each step a method of :data:`avse.enhance.udiffse.ENHANCERS`
with the same prior. Configured as::

    method: cascade
    method_conf:
      steps:
        - {method: separate, method_conf: {n_sources: 2, ...}}
        - {method: buddy, method_conf: {...}}

Step ``j`` runs on every output of step ``j - 1`` (a ``K``-source step multiplies the
number of outputs by ``K``), so the cascade above returns ``(2, F, T)``. Inputs and
outputs follow the enhancer interface: ``X`` (F, T) complex compressed STFT ->
``(F, T)`` or ``(K, F, T)`` complex, with the per-utterance ``aux`` inputs every step
declares (:attr:`needs`, their union). Each step draws from the same ``generator`` in
turn, so a cascade is deterministic per seed.

With an audio-visual prior whose score function conditions each source on its own
talker's lips (:class:`avse.nets.lip_cond.ConditionedScore` of ``K = n_sources``
talkers), every step gets the lips of the talkers its input holds: the separation
(on the mixture of all ``K``) all of them, source ``k`` in rows ``j * K + k``; a later
one-source step on separated source ``k`` talker ``k``'s alone. A step that would restore
an input of several talkers as one signal, or split it into another number of sources, is
refused then (no talker's lips describe it): put the separation first.

``last_stats``: ``nfe`` (sum over steps and sources), ``steps`` (each step's
statistics per source), ``t60`` (mean of the T60 estimates of the last step that gives
one, s; the sources share a room), ``seconds``.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from avse.enhance.base import ENHANCERS, bound_sources
from avse.errors import InputError


@ENHANCERS.register("cascade")
class Cascade:
    """Sequential composition of enhancers (module docstring). ``steps``: a list of
    ``{method: NAME, method_conf: {...}}`` mappings, at least two."""

    def __init__(self, steps: list | None = None):
        if not isinstance(steps, (list, tuple)) or len(steps) < 2:
            raise InputError("cascade: method_conf.steps must list at least two "
                             "{method: NAME, method_conf: {...}} mappings")
        self.steps = []
        for j, st in enumerate(steps):
            if not isinstance(st, dict) or "method" not in st or set(st) - {"method", "method_conf"}:
                raise InputError(f"cascade: step {j + 1} must be {{method: NAME, method_conf: {{...}}}}, got {st!r}")
            if st["method"] == "cascade":
                raise InputError("cascade: a step cannot itself be a cascade; list the steps flat")
            self.steps.append(ENHANCERS.build(st["method"], **(st.get("method_conf") or {})))
        self.needs = tuple(dict.fromkeys(n for e in self.steps for n in getattr(e, "needs", ())))
        self.needs_grad = any(getattr(e, "needs_grad", False) for e in self.steps)
        self.n_sources = int(np.prod([int(getattr(e, "n_sources", 1)) for e in self.steps]))
        self.last_stats: dict = {}

    def __call__(self, score_fn, sde, X: torch.Tensor, generator: torch.Generator | None = None,
                 **aux) -> torch.Tensor:
        """``X`` (F, T) complex -> ``(F, T)``, or ``(K, F, T)`` for ``n_sources = K > 1``."""
        t0 = time.perf_counter()
        current = X[None]                                    # (n, F, T)
        # with per-source lips: the talkers (0-based) each current signal holds
        talkers = [tuple(range(self.n_sources))] if bound_sources(score_fn, self.n_sources, "cascade") else None
        stats, nfe, t60 = [], 0, None
        for j, enh in enumerate(self.steps, 1):
            outs, step_stats, t60s = [], [], []
            for i, Xk in enumerate(current):
                fn = score_fn if talkers is None else score_fn.select(self._talkers(j, enh, talkers[i]))
                S = enh(fn, sde, Xk, generator=generator, **aux)
                outs.append(S if S.dim() == 3 else S[None])
                st = dict(getattr(enh, "last_stats", None) or {})
                step_stats.append(st)
                nfe += int(st.get("nfe") or 0)
                if st.get("t60") is not None:
                    t60s.append(float(st["t60"]))
            current = torch.cat(outs)
            if talkers is not None:   # each output holds one talker now
                talkers = [(k,) for g in talkers for k in g]
            stats.append(step_stats)
            if t60s:
                t60 = float(np.mean(t60s))
        self.last_stats = {"nfe": nfe, "steps": stats, "t60": t60,
                           "seconds": time.perf_counter() - t0}
        return current[0] if self.n_sources == 1 else current

    @staticmethod
    def _talkers(j: int, enh, talkers: tuple) -> tuple:
        """The talkers whose lips condition step ``j`` on a signal holding ``talkers``: all of
        them when the step restores each (as many sources as talkers), else an error."""
        k = int(getattr(enh, "n_sources", 1))
        if k != len(talkers):
            raise InputError(f"cascade: step {j} ({type(enh).__name__}) gives {k} source(s) from a signal "
                             f"of {len(talkers)} talkers; with per-source lips each step must restore every "
                             "talker of its input separately (put the separation first)")
        return talkers
