"""``lip_encoder_init``: start a prior's lip encoder from weights on disk.

Two kinds of file (``lip_encoder_init_format``):

* ``avse``: the ``lip_encoder.pt`` of :mod:`avse.bin.train_lip_encoder`
  (:func:`avse.train.sync.save_lip_encoder`), for an encoder of the same name and
  options; every tensor is loaded.
* ``lrw_resnet_tcn``: a released lip-reading checkpoint of the ResNet-18 + MS-TCN of
  Martinez, Ma, Petridis, Pantic (ICASSP 2020) and Ma, Martinez, Petridis, Pantic
  (ICASSP 2021) (:mod:`avse.nets.lip_resnet18`), for ``lip_encoder: resnet18_tcn``. The
  file is a ``torch.save`` of ``{"model_state_dict": {...}, ...}`` (the repository's
  ``save_checkpoint`` / ``load_model``; a ``state_dict`` entry or a bare state dict are
  read too, and the ``module.`` prefix of ``DataParallel`` is dropped). Keys map by
  :meth:`~avse.nets.lip_resnet18.ResNet18TCNLipEncoder.lrw_key`; the word classifier and
  keys of no known part are ignored, the new head (projection, LayerNorm) starts at
  random. The load is all or nothing: a file that leaves a tensor of the 3D front, the
  ResNet-18 or the used TCN blocks missing, has one of another shape, or has a tensor
  this configuration lacks (e.g. PReLU weights for ``act: swish``) is refused with the
  lists and a hint.
* ``auto``: chosen by the contents: the avse format marker, else tensor keys starting
  with ``frontend3D.`` or ``trunk.``.

``freeze_lip_encoder`` then fixes the tensors loaded from the file; the others (the new
head of ``resnet18_tcn``) keep training.
"""
from typing import Any, Dict, List

import torch
import torch.nn as nn

from avse.errors import InputError
from avse.nets.storage import read_torch_file
from avse.train.sync import apply_lip_encoder_file, is_lip_encoder_file

FORMATS = ("auto", "avse", "lrw_resnet_tcn")
LRW_PREFIXES = ("frontend3D.", "trunk.")
RELEASED = "width 64, tcn_hidden 256, tcn_kernels [3, 5, 7], tcn_layers 4"


def lrw_state(obj: Any) -> Dict[str, torch.Tensor] | None:
    """The tensors of a lip-reading checkpoint's contents (``module.`` dropped), or None
    when it has no key starting with ``frontend3D.`` / ``trunk.``."""
    if not isinstance(obj, dict):
        return None
    for k in ("model_state_dict", "state_dict"):
        if isinstance(obj.get(k), dict):
            obj = obj[k]
            break
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()
          if isinstance(k, str) and torch.is_tensor(v)}
    return sd if any(k.startswith(LRW_PREFIXES) for k in sd) else None


def detect_format(obj: Any, path: str, fmt: str = "auto") -> str:
    """``avse`` or ``lrw_resnet_tcn``: ``fmt`` checked, or found from the contents."""
    if fmt not in FORMATS:
        raise InputError(f"lip_encoder_init_format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt != "auto":
        return fmt
    if is_lip_encoder_file(obj):
        return "avse"
    if lrw_state(obj) is not None:
        return "lrw_resnet_tcn"
    top = sorted(map(str, obj))[:8] if isinstance(obj, dict) else type(obj).__name__
    raise InputError(f"lip_encoder_init {path}: not a lip-encoder file of avse.bin.train_lip_encoder nor a "
                     "lip-reading ResNet-18 + TCN checkpoint (no avse format marker, no tensor keys starting with "
                     f"frontend3D. or trunk.; found {top})")


def _listed(items: List[str], n: int = 8) -> str:
    more = f" ... and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def load_lrw_weights(encoder: nn.Module, name: str, obj: Any, path: str) -> Dict[str, Any]:
    """Load the lip-reading checkpoint contents ``obj`` (of ``path``) into ``encoder``
    (see the module docstring). Returns ``{"format", "loaded" (our keys), "new" (our keys
    not in the file), "ignored" (file keys, with the reason)}``."""
    key_of = getattr(encoder, "lrw_key", None)
    if key_of is None:
        raise InputError(f"lip_encoder_init {path}: a lip-reading ResNet-18 + TCN checkpoint loads into "
                         f"lip_encoder: resnet18_tcn, not {name}")
    sd = lrw_state(obj)
    if sd is None:
        raise InputError(f"lip_encoder_init {path}: no lip-reading weights (no tensor keys starting with "
                         "frontend3D. or trunk. in the file or its model_state_dict)")
    own = encoder.state_dict()
    n_tcn = int(encoder.config.get("tcn_layers", 0))
    loaded: Dict[str, torch.Tensor] = {}
    ignored, shapes, extra, other_shape = [], [], [], set()
    for k, v in sd.items():
        ours = key_of(k)
        if ours == "":
            ignored.append(f"{k} (word classifier)")
        elif ours is None:
            ignored.append(f"{k} (no part of {name})")
        elif ours not in own:
            if ours.startswith("tcn.") and int(ours.split(".")[1]) >= n_tcn:
                ignored.append(f"{k} (beyond tcn_layers {n_tcn})")
            else:
                extra.append(f"{k} -> {ours}")
        elif tuple(v.shape) != tuple(own[ours].shape):
            shapes.append(f"{k}: file {tuple(v.shape)}, encoder {tuple(own[ours].shape)}")
            other_shape.add(ours)
        else:
            loaded[ours] = v
    want = [k for k in own if not k.startswith(encoder.NEW)]
    missing = [k for k in want if k not in loaded and k not in other_shape]
    if missing or shapes or extra:
        raise InputError(_refusal(path, name, encoder.config, len(loaded), len(want), missing, shapes, extra,
                                  ignored))
    encoder.load_state_dict(loaded, strict=False)
    return {"format": "lrw_resnet_tcn", "loaded": sorted(loaded), "new": [k for k in own if k not in loaded],
            "ignored": ignored}


def _refusal(path, name, conf, n_loaded, n_want, missing, shapes, extra, ignored) -> str:
    lines = [f"lip_encoder_init {path}: the lip-reading checkpoint does not fit lip_encoder {name} {conf}: "
             f"{n_loaded} of {n_want} tensors match"]
    if missing:
        lines.append(f"  missing in the file ({len(missing)}): {_listed(missing)}")
    if shapes:
        lines.append(f"  other shape ({len(shapes)}): {_listed(shapes, 6)}")
    if extra:
        lines.append(f"  not in this encoder ({len(extra)}): {_listed(extra, 6)}")
    if n_loaded == 0:
        lines.append("  nothing matches: is it a ResNet-18 lip-reading model (not a ShuffleNet or audio one)?")
    if any(".act" in e for e in extra) and conf.get("act") != "prelu":
        lines.append("  the file has PReLU weights: set lip_encoder_conf.act: prelu")
    if conf.get("act") == "prelu" and any(".act" in k for k in missing):
        lines.append("  the file has no PReLU weights: set lip_encoder_conf.act: swish (or relu)")
    if any(k.startswith("tcn.") for k in missing) and any(i.startswith("tcn.") and "no part" in i for i in ignored):
        lines.append("  its temporal network is not this MS-TCN (a DC-TCN, depthwise-separable or one-branch TCN?): "
                     "set lip_encoder_conf.tcn_layers: 0 to load the 3D front and ResNet-18 only")
    if shapes:
        lines.append(f"  set width / tcn_hidden / tcn_kernels / tcn_layers to the checkpoint's (released: {RELEASED})")
    return "\n".join(lines)


def init_lip_encoder(encoder: nn.Module, name: str, path: str | None, freeze: bool, fmt: str = "auto",
                     log=None) -> Dict[str, Any] | None:
    """Load ``path`` (if given; ``fmt``: ``auto``, ``avse``, ``lrw_resnet_tcn``) into
    ``encoder`` (built as ``name``), log what was loaded, left new and ignored, and
    freeze (``requires_grad`` False) the loaded parameters if ``freeze`` (every one
    without ``path``). Returns the report of :func:`load_lrw_weights` (None without
    ``path``)."""
    report = None
    if path:
        obj = read_torch_file(path, "lip-encoder file (lip_encoder_init)",
                              "give the lip_encoder.pt of avse.bin.train_lip_encoder or a lip-reading checkpoint")
        if detect_format(obj, path, fmt) == "avse":
            apply_lip_encoder_file(encoder, obj, path, name)
            report = {"format": "avse", "loaded": sorted(encoder.state_dict()), "new": [], "ignored": []}
        else:
            report = load_lrw_weights(encoder, name, obj, path)
        if log is not None:
            own = encoder.state_dict()
            n = sum(own[k].numel() for k in report["loaded"])
            log.info("lip encoder %s initialised from %s (%s): %d tensors (%.2f M values) loaded; new: %s; "
                     "ignored in the file: %s", name, path, report["format"], len(report["loaded"]), n / 1e6,
                     _listed(report["new"]) or "none", _listed(report["ignored"], 6) or "none")
    if freeze:
        if not path and log is not None:
            log.warning("freeze_lip_encoder without lip_encoder_init: the lip encoder stays random")
        keep = set(report["loaded"]) if report else None
        for k, p in encoder.named_parameters():
            if keep is None or k in keep:
                p.requires_grad_(False)
        if report and report["new"] and log is not None:
            log.info("freeze_lip_encoder: the tensors loaded from %s are fixed; still trained: %s", path,
                     _listed([k for k, p in encoder.named_parameters() if p.requires_grad]))
    return report
