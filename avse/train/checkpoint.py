"""Training checkpoints and the exported model file.

Training checkpoint ``DIR/checkpoints/step_XXXXXXXX.pt`` (written atomically; the
newest ``keep`` are kept): a dict with ``model``, ``ema``, ``optimizer`` state dicts,
``step``, ``epoch`` (fractional; the data position itself is a function of
``(seed, step)``, see :mod:`avse.train.dataset`), the Python/numpy/torch(/CUDA) RNG
states, and ``config`` (the resolved training config).

Exported model ``DIR/model.pt`` (what inference loads)::

    {"format": "avse.score_model", "version": 1,
     "model": <ScoreModel.config: what rebuilds the architecture>,
     "state_dict": <EMA weights>, "sde": {"name": "ouve", "conf": {...}},
     "frontend": <SpectralFrontEnd.config()>, "fs": 16000, "step": N, "train_config": {...}}

:func:`load_model` also accepts a training checkpoint (its EMA weights are used).
"""
import glob
import logging
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from avse.dsp.stft import SpectralFrontEnd
from avse.errors import InputError
from avse.utils.fileio import atomic_path

log = logging.getLogger(__name__)

MODEL_FORMAT = "avse.score_model"
MODEL_VERSION = 1
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


def torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file renamed into place (never half-written)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


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


def export_model(path: str, model_config: Dict[str, Any], state_dict: Dict[str, torch.Tensor],
                 sde_name: str, sde_conf: Dict[str, Any], frontend_conf: Dict[str, Any], fs: int,
                 step: int = 0, train_config: Dict[str, Any] | None = None) -> None:
    """Write the inference model file (see the module docstring)."""
    torch_save({"format": MODEL_FORMAT, "version": MODEL_VERSION, "model": model_config,
                "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
                "sde": {"name": sde_name, "conf": dict(sde_conf or {})},
                "frontend": dict(frontend_conf), "fs": int(fs), "step": int(step),
                "train_config": train_config or {}}, path)


@dataclass
class LoadedModel:
    """What inference needs: the score network (eval mode), its SDE and front-end."""

    model: torch.nn.Module
    sde: Any
    frontend: SpectralFrontEnd
    fs: int
    meta: Dict[str, Any] = field(default_factory=dict)


def _read(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise InputError(f"{path}: model file not found; train the prior first (stage 4)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{path}: not a readable model file (corrupt or truncated?): {e}") from e
    if not isinstance(obj, dict):
        raise InputError(f"{path}: not an avse model file (got {type(obj).__name__})")
    if obj.get("format") == MODEL_FORMAT:
        if int(obj.get("version", 0)) > MODEL_VERSION:
            raise InputError(f"{path}: model file version {obj['version']} is newer than this toolkit "
                             f"reads ({MODEL_VERSION}); update avse")
        return obj
    if "ema" in obj and "export" in obj:  # a training checkpoint
        exp = dict(obj["export"])
        exp["state_dict"] = obj["ema"]["module"]
        exp["step"] = obj.get("step", 0)
        return exp
    raise InputError(f"{path}: not an avse model file or training checkpoint")


def load_model(path: str, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the score model of ``path`` with its weights, on ``device``.

    Raises:
        InputError: missing/corrupt file, unknown format, or weights that do not fit
            the stored architecture (the message names the file and the mismatch).
    """
    from avse.diffusion.sde import SDES
    from avse.nets.score_model import ScoreModel

    obj = _read(path)
    try:
        sde = SDES.build(obj["sde"]["name"], **obj["sde"]["conf"])
        # rebuilds the architecture and checks (ScoreModel.check_compatible) that the
        # stored description (model, model_conf, SDE, output convention) is consistent
        model = ScoreModel.from_stored(obj["model"], sde)
    except InputError as e:
        raise InputError(f"{path}: {e}") from e
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: cannot rebuild the model from its stored config: {e!r}") from e
    missing, unexpected = [], []
    try:
        res = model.load_state_dict(obj["state_dict"], strict=False)
        missing, unexpected = list(res.missing_keys), list(res.unexpected_keys)
    except RuntimeError as e:  # shape mismatches
        raise InputError(f"{path}: weights do not fit the architecture {obj['model']}: "
                         f"{str(e).splitlines()[0]} ...") from e
    if missing or unexpected:
        raise InputError(f"{path}: weights do not fit the architecture (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}); was it made by another version or config?")
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    frontend = SpectralFrontEnd(**obj["frontend"])
    meta = {k: obj.get(k) for k in ("step", "train_config", "model", "sde")}
    return LoadedModel(model=model, sde=sde, frontend=frontend, fs=int(obj["fs"]), meta=meta)
