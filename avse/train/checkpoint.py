"""Training checkpoints (the exported model file is :mod:`avse.nets.storage`).

Training checkpoint ``DIR/checkpoints/step_XXXXXXXX.pt`` (written atomically; the
newest ``keep`` are kept): a dict with ``model``, ``ema``, ``optimizer`` state dicts,
``step``, ``epoch`` (fractional; the data position itself is a function of
``(seed, step)``, see :mod:`avse.train.dataset`), the Python/numpy/torch(/CUDA) RNG
states, and ``config`` (the resolved training config).

:func:`avse.nets.storage.load_model` also accepts a training checkpoint (its EMA
weights are used).
"""
import glob
import logging
import os
import random
import re
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from avse.nets.storage import torch_save

log = logging.getLogger(__name__)

_CKPT = re.compile(r"^step_(\d+)\.pt$")


def rng_states() -> Dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) RNG states."""
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_states(st: Dict[str, Any]) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def list_checkpoints(ckpt_dir: str) -> List[Tuple[int, str]]:
    """``[(step, path)]`` of ``ckpt_dir``, oldest first."""
    out = []
    for p in glob.glob(os.path.join(ckpt_dir, "step_*.pt")):
        m = _CKPT.match(os.path.basename(p))
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def save_checkpoint(ckpt_dir: str, state: Dict[str, Any], keep: int = 2) -> str:
    """Write ``state`` (with ``state['step']``) and delete all but the newest ``keep``."""
    path = os.path.join(ckpt_dir, f"step_{int(state['step']):08d}.pt")
    torch_save(state, path)
    for _, old in list_checkpoints(ckpt_dir)[:-max(1, int(keep))]:
        try:
            os.unlink(old)
        except FileNotFoundError:
            pass
    return path


def load_last_checkpoint(ckpt_dir: str, map_location="cpu") -> Dict[str, Any] | None:
    """The newest readable checkpoint of ``ckpt_dir`` (``None`` when there is none).

    An unreadable newest file (a disk error) is reported and the previous one used.
    """
    for step, path in reversed(list_checkpoints(ckpt_dir)):
        try:
            state = torch.load(path, map_location=map_location, weights_only=False)
        except Exception as e:  # noqa: BLE001 - any unreadable file
            log.warning("%s: unreadable checkpoint (%s); trying an older one", path, e)
            continue
        state["path"] = path
        return state
    return None
