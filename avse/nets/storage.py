"""The exported model file: what inference loads, independent of the training code.

``DIR/model.pt`` written by :func:`export_model` (the trainer calls it)::

    {"format": "avse.score_model", "version": 1,
     "model": <ScoreModel.config or SpeechVAE.config: what rebuilds the architecture>,
     "state_dict": <EMA weights>, "sde": {"name": "ouve", "conf": {...}} (None for a VAE),
     "frontend": <SpectralFrontEnd.config()>, "fs": 16000, "step": N, "train_config": {...}}

A VAE prior (:mod:`avse.nets.vae`) has ``model["format"] == "vae"`` and no SDE.
:func:`load_model` rebuilds either kind (and also accepts a training checkpoint of
:mod:`avse.train.checkpoint`, using its EMA weights); :attr:`LoadedModel.kind` says
which (``"score"`` or ``"vae"``).
"""
import os
from dataclasses import dataclass, field
from typing import Any, Dict

import torch

from avse.dsp.stft import SpectralFrontEnd
from avse.errors import InputError
from avse.utils.fileio import atomic_path

MODEL_FORMAT = "avse.score_model"
MODEL_VERSION = 1


def torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file renamed into place (never half-written)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def export_model(path: str, info: Dict[str, Any], state_dict: Dict[str, torch.Tensor], step: int = 0,
                 train_config: Dict[str, Any] | None = None) -> None:
    """Write the inference model file (see the module docstring); ``info`` holds
    ``model``, ``sde``, ``frontend`` and ``fs``."""
    torch_save({"format": MODEL_FORMAT, "version": MODEL_VERSION, "model": info["model"],
                "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
                "sde": info.get("sde"), "frontend": dict(info["frontend"]), "fs": int(info["fs"]),
                "step": int(step), "train_config": train_config or {}}, path)


@dataclass
class LoadedModel:
    """What inference needs: the network (eval mode), its SDE (None for a VAE) and front-end."""

    model: torch.nn.Module
    sde: Any
    frontend: SpectralFrontEnd
    fs: int
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"vae"`` for a VAE prior, ``"score"`` for a diffusion score model."""
        return "vae" if self.sde is None else "score"


def read_torch_file(path: str, what: str, missing_hint: str) -> Any:
    """``torch.load`` of ``path`` on the CPU; :class:`InputError` naming the file and
    ``what`` it should be when it is missing (with ``missing_hint``) or unreadable."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: {what} not found; {missing_hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file
        raise InputError(f"{path}: not a readable {what} (corrupt or truncated?): {e}") from e


def _read(path: str) -> Dict[str, Any]:
    obj = read_torch_file(path, "model file", "train the prior first (stage 4)")
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


def read_model_info(path: str) -> Dict[str, Any]:
    """What ``path`` describes, without building the network: ``kind`` (``"score"`` or
    ``"vae"``), ``audio_visual``, ``fs``, ``frontend`` (STFT settings), ``model`` (its
    architecture config), ``sde`` and ``step``. Raises :class:`InputError` as :func:`load_model`."""
    obj = _read(path)
    try:
        arch = dict(obj["model"])
        info = {"kind": "vae" if arch.get("format") == "vae" else "score",
                "audio_visual": bool((arch.get("model_conf") or {}).get("lip_encoder")),
                "fs": int(obj["fs"]), "frontend": dict(obj["frontend"]), "model": arch,
                "sde": obj.get("sde"), "step": int(obj.get("step") or 0)}
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: incomplete model file: {e!r}") from e
    return info


def set_layout(model: torch.nn.Module, channels_last: bool = True) -> torch.nn.Module:
    """``model`` with its 4-D weights in channels-last (NHWC) memory format, or back in
    the contiguous (NCHW) one, in place. Channels last, the 2-D convolutions run on
    oneDNN's NHWC kernels: same results up to float rounding, and on 2 CPU cores the
    recipe's fast UDiffSE+ (mini_av 1000-step prior, 5 s, b = 4) runs at RTF 0.45 instead
    of 0.54 (``avse.bin.benchmark --models ... --layouts nhwc nchw``)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.dim() == 4:     # Module.to(memory_format=...) refuses a model with 3-D convolutions
                t.data = t.data.contiguous(memory_format=fmt)
    return model


def load_model(path: str, device: str | torch.device = "cpu", channels_last: bool = True) -> LoadedModel:
    """Rebuild the score model of ``path`` with its weights, on ``device``, in eval mode
    without gradients for its parameters; ``channels_last``: :func:`set_layout`.

    Raises:
        InputError: missing/corrupt file, unknown format, or weights that do not fit
            the stored architecture (the message names the file and the mismatch).
    """
    from avse.diffusion.sde import SDES
    from avse.nets.score_model import ScoreModel

    obj = _read(path)
    try:
        if obj["model"].get("format") == "vae":
            from avse.nets.vae import SpeechVAE
            sde, model = None, SpeechVAE.from_config(obj["model"]["model"], obj["model"]["model_conf"])
        else:
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
    set_layout(model, channels_last)
    for p in model.parameters():
        p.requires_grad_(False)
    frontend = SpectralFrontEnd(**obj["frontend"])
    meta = {k: obj.get(k) for k in ("step", "train_config", "model", "sde")}
    return LoadedModel(model=model, sde=sde, frontend=frontend, fs=int(obj["fs"]), meta=meta)
