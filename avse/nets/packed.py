"""Packed models (``avse.bin.pack``): a model usable without its recipe directory.

Archive layout (``.tar.gz``)::

    manifest.json            see below
    model/<model>.pt         the inference model file (avse.nets.storage)
    model/config.yaml ...    the training config, loss curve (when present)
    enhance/<name>.yaml      each enhancement config as written (comments included)
    aux/<sha>/<file>         model files a config names (lip_fallback_model, lip_rel_model)
    extra/...                any other files (RESULTS.md)

``manifest.json``: ``avse_version``, ``git_commit``, ``created``, ``files`` (SHA-256 and
size of every member), ``model`` (``file``: its member; ``kind``, ``audio_visual``,
``fs``, ``frontend`` (STFT settings), ``model`` (architecture), ``sde``, ``step``:
:func:`avse.nets.storage.read_model_info`) and ``enhance``: ``{"default": NAME,
"configs": {NAME: settings}}``, the method settings of every packed enhancement config
(:mod:`avse.enhance.method_config`, defaults filled in). A config's ``NAME`` is its file
name without ``.yaml`` and a leading ``enhance_`` (``conf/enhance_udiffse_plus.yaml``:
``udiffse_plus``).

:func:`open_model` loads a packed archive, an experiment directory (its ``model.pt``)
or a model file; an archive's model member is checked against its SHA-256 and read
through a temporary directory that is removed afterwards (nothing is cached).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

from avse.errors import InputError
from avse.nets.storage import LoadedModel, load_model

MANIFEST = "manifest.json"
PACK_FORMAT = 2     # 1: the manifest without "model" and "enhance"


def config_name(path: str) -> str:
    """The name an enhancement config is recorded under (module docstring)."""
    name = os.path.basename(path)
    name = name[:-5] if name.endswith(".yaml") else name[:-4] if name.endswith(".yml") else name
    return name[len("enhance_"):] if name.startswith("enhance_") and len(name) > 8 else name


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ModelBundle:
    """A loaded model with what it records: ``enhance`` (name -> method settings),
    ``default`` (the name to use when none is given, or None) and ``info`` (the manifest
    of an archive; ``{}`` otherwise)."""

    model: LoadedModel
    source: str
    enhance: Dict[str, dict] = field(default_factory=dict)
    default: Optional[str] = None
    info: Dict[str, Any] = field(default_factory=dict)

    def load_file(self, name: str, loader: Callable[[str], Any]) -> Any:
        """``loader(local path)`` of a file a recorded setting names: an archive member
        (``aux/...``, extracted to a temporary directory, checked against its SHA-256 and
        removed after loading) or, outside an archive, a path."""
        if not self.info or name not in self.info.get("files", {}):
            if not os.path.isfile(name):
                raise InputError(f"{self.source}: a recorded setting names {name}, which is not a file")
            return loader(name)
        with tarfile.open(self.source, "r:*") as tar:
            return _with_member(self.source, tar, name, self.info, loader)


def is_packed(path: str) -> bool:
    return os.path.isfile(path) and (path.endswith((".tar.gz", ".tgz")) or tarfile.is_tarfile(path))


def read_manifest(path: str, tar: tarfile.TarFile) -> dict:
    try:
        man = json.load(tar.extractfile(MANIFEST))
    except (KeyError, AttributeError, ValueError) as e:
        raise InputError(f"{path}: not a packed avse model (no readable {MANIFEST}): {e}") from e
    if int(man.get("pack_format", 1)) > PACK_FORMAT:
        raise InputError(f"{path}: packed with a newer avse (format {man['pack_format']}); update avse")
    return man


def _model_member(path: str, man: dict) -> str:
    member = (man.get("model") or {}).get("file")
    if member is None:   # format 1: the one model/*.pt member
        pts = [f for f in man.get("files", {}) if f.startswith("model/") and f.endswith(".pt")]
        if len(pts) != 1:
            raise InputError(f"{path}: cannot tell the model file among {sorted(man.get('files', {}))}")
        member = pts[0]
    return member


def _with_member(path: str, tar: tarfile.TarFile, member: str, man: dict, loader: Callable[[str], Any]) -> Any:
    """``loader(local copy of member)``, the copy checked against the manifest's SHA-256 and
    removed afterwards; errors name ``path:member``."""
    tmp = tempfile.mkdtemp(prefix="avse_packed_")
    try:
        local = os.path.join(tmp, os.path.basename(member))
        src = tar.extractfile(member)
        if src is None:
            raise InputError(f"{path}: {member} is not a file in the archive")
        with open(local, "wb") as f:
            shutil.copyfileobj(src, f)
        want = (man.get("files", {}).get(member) or {}).get("sha256")
        if want and sha256(local) != want:
            raise InputError(f"{path}: {member} does not match its SHA-256 in the manifest (corrupt archive)")
        try:
            return loader(local)
        except InputError as e:
            raise InputError(str(e).replace(local, f"{path}:{member}")) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_packed(path: str, device="cpu") -> ModelBundle:
    """The model and recorded enhancement settings of a packed archive."""
    try:
        with tarfile.open(path, "r:*") as tar:
            man = read_manifest(path, tar)
            model = _with_member(path, tar, _model_member(path, man), man, lambda p: load_model(p, device))
    except (tarfile.TarError, OSError, EOFError) as e:
        raise InputError(f"{path}: unreadable archive: {e}") from e
    except KeyError as e:
        raise InputError(f"{path}: the archive lacks {e}") from e
    enh = man.get("enhance") or {}
    return ModelBundle(model, path, dict(enh.get("configs") or {}), enh.get("default"), man)


def open_model(path: str, device="cpu") -> ModelBundle:
    """A packed archive (``.tar.gz``), an experiment directory (``DIR/model.pt``) or a
    model file; :class:`InputError` naming ``path`` when it is none of them."""
    if os.path.isdir(path):
        mp = os.path.join(path, "model.pt")
        if not os.path.isfile(mp):
            raise InputError(f"{path}: an experiment directory needs model.pt (train the prior, stage 4)")
        return ModelBundle(load_model(mp, device), mp)
    if not os.path.exists(path):
        raise InputError(f"{path}: model not found (give a packed .tar.gz, an experiment dir or a model.pt)")
    if is_packed(path):
        return load_packed(path, device)
    return ModelBundle(load_model(path, device), path)
