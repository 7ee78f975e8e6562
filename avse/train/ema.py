"""Exponential moving average (EMA) of model weights.

Score-based models are evaluated with an EMA of their weights (Song et al., ICLR
2021; SGMSE+, Richter et al. 2023, decay 0.999). After every optimiser step::

    ema <- d * ema + (1 - d) * w,   d = min(decay, (1 + n) / (10 + n)) with warm-up

where ``n`` counts the updates done so far. The warm-up (as TensorFlow's
``ExponentialMovingAverage(num_updates=...)``) lets short runs forget the random
initial weights: without it, after 1000 steps at decay 0.999 the EMA still holds
``0.999^1000 = 37 %`` of the initialisation. ``warmup: false`` gives the plain
fixed-decay EMA. Buffers (running statistics, if any) are copied, not averaged.
"""
import copy
from typing import Any, Dict

import torch
import torch.nn as nn


class EMA:
    """EMA copy of a module: ``ema.module`` is an ``eval()`` copy with averaged weights.

    Args:
        model: the trained module (unwrapped from DDP).
        decay: the asymptotic decay ``d`` in [0, 1).
        warmup: use ``min(decay, (1 + n) / (10 + n))``.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next :meth:`update` uses."""
        if self.warmup:
            n = self.num_updates
            return min(self.decay, (1.0 + n) / (10.0 + n))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        d = self.current_decay()
        ema_p = [p for p in self.module.parameters()]
        cur_p = [p.detach() for p in model.parameters()]
        if len(ema_p) != len(cur_p):
            raise ValueError("EMA.update: the model does not match the averaged one")
        for e, w in zip(ema_p, cur_p):
            e.mul_(d).add_(w.to(e.dtype), alpha=1.0 - d)
        for e, b in zip(self.module.buffers(), model.buffers()):
            e.copy_(b)
        self.num_updates += 1

    def state_dict(self) -> Dict[str, Any]:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates,
                "decay": self.decay, "warmup": self.warmup}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
        self.decay = float(state.get("decay", self.decay))
        self.warmup = bool(state.get("warmup", self.warmup))

    def to(self, device) -> "EMA":
        self.module.to(device)
        return self
