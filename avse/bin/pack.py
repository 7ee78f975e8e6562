"""Stage 7: pack a trained model with what is needed to use and cite it.

    python -m avse.bin.pack --exp_dir exp/prior --model model.pt \\
        [--enhance_config conf/enhance_udiffse_plus.yaml ...] [--default_enhance NAME] \\
        [--extra RESULTS.md ...] --out exp/prior/packed.tar.gz

The archive (layout and manifest: :mod:`avse.nets.packed`) holds the model, the
resolved training config (``config.yaml``), the loss curve files found beside it, the
enhancement configs as written (``enhance/<name>.yaml``), any ``--extra`` files, and
``manifest.json``: the SHA-256 of every member, the avse version and git commit, the
model's description (kind, audio-visual, sample rate, STFT settings, architecture) and
the method settings of every enhancement config (checked and completed here:
:mod:`avse.enhance.method_config`) with a default (``--default_enhance``, a config's
name, e.g. ``udiffse_plus`` for ``conf/enhance_udiffse_plus.yaml``; default: the first).
Model files that a config names (``lip_fallback_model``, ``lip_rel_model``: the audio-only
fallback prior and the lip-reliability network of an AV system) are packed as
``aux/<sha256[:16]>/<file name>`` and the recorded settings name that member.
``avse-enhance --model packed.tar.gz`` (:mod:`avse.bin.enhance_files`) needs nothing else.
"""
import argparse
import json
import logging
import os
import subprocess
import sys
import tarfile
import time

from avse.enhance.method_config import MODEL_FILE_KEYS, resolve_settings
from avse.errors import InputError, StageError
from avse.nets.packed import MANIFEST, PACK_FORMAT, config_name, sha256
from avse.nets.storage import read_model_info
from avse.utils.cli import run_main
from avse.utils.config import load_yaml
from avse.utils.fileio import atomic_path
from avse.version import __version__

log = logging.getLogger("avse.pack")
BESIDE = ("config.yaml", "train_log.csv", "loss.png")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__)), check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def enhance_settings(paths, default: str | None, kind: str) -> dict:
    """``{"default": NAME, "configs": {NAME: settings}}`` of the enhancement configs ``paths``
    for a prior of ``kind`` (``score`` or ``vae``)."""
    from avse.enhance import ENHANCERS

    configs = {}
    for p in paths:
        name = config_name(p)
        if name in configs:
            raise StageError(f"{p}: a second enhancement config named {name!r}")
        configs[name] = resolve_settings(load_yaml(p), p)
        want = getattr(ENHANCERS.get(configs[name]["method"]), "prior", "score")
        if want != kind:
            raise InputError(f"{p}: method {configs[name]['method']} needs a {want} prior; the model is a {kind} prior")
    if default is not None and default not in configs:
        raise InputError(f"--default_enhance {default!r} is none of the configs given: {sorted(configs)}")
    return {"default": default or (next(iter(configs)) if configs else None), "configs": configs}


def pack_member(path: str, what: str, members: dict) -> str:
    """Add the file ``path`` to ``members`` as ``aux/<sha256[:16]>/<name>``; return that member."""
    if not os.path.isfile(path):
        raise StageError(f"{path}: {what} not found (train it first; paths are relative to the recipe directory)")
    arc = f"aux/{sha256(path)[:16]}/{os.path.basename(path)}"
    members[arc] = path
    return arc


def pack(exp_dir: str, model: str, out: str, extra=(), enhance_config=(), default_enhance=None) -> dict:
    """Write the archive atomically; return the manifest."""
    model_path = os.path.join(exp_dir, model)
    if not os.path.isfile(model_path):
        raise StageError(f"{model_path}: model not found; train the prior first (stage 4)")
    info = read_model_info(model_path)
    members = {f"model/{model}": model_path}
    for name in BESIDE:
        p = os.path.join(exp_dir, name)
        if os.path.isfile(p):
            members[f"model/{name}"] = p
    enhance = enhance_settings(enhance_config, default_enhance, info["kind"])
    for p in enhance_config:
        members[f"enhance/{config_name(p)}.yaml"] = p
    for name, settings in enhance["configs"].items():
        for key in MODEL_FILE_KEYS:
            if settings.get(key):
                settings[key] = pack_member(settings[key], f"{key} of enhancement config {name!r}", members)
    for p in extra:
        if not os.path.isfile(p):
            raise StageError(f"{p}: extra file not found")
        members[f"extra/{os.path.basename(p)}"] = p
    manifest = {"pack_format": PACK_FORMAT, "avse_version": __version__, "git_commit": git_commit(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "model": {"file": f"model/{model}", **info}, "enhance": enhance,
                "files": {arc: {"sha256": sha256(p), "bytes": os.path.getsize(p)} for arc, p in members.items()}}
    with atomic_path(out) as tmp:
        with tarfile.open(tmp, "w:gz") as tar:
            for arc, p in members.items():
                tar.add(p, arcname=arc)
            mpath = tmp + ".manifest.json"
            with open(mpath, "w") as f:
                json.dump(manifest, f, indent=2, sort_keys=True)
            tar.add(mpath, arcname=MANIFEST)
            os.unlink(mpath)
    log.info("packed %d files into %s (enhancement configs: %s, default %s)", len(members), out,
             ", ".join(enhance["configs"]) or "none", enhance["default"])
    return manifest


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--model", default="model.pt")
    p.add_argument("--enhance_config", nargs="*", default=[],
                   help="enhancement configs (YAML of avse.bin.enhance) whose method settings the archive records")
    p.add_argument("--default_enhance", default=None,
                   help="name of the default one (file name without .yaml and enhance_); default: the first")
    p.add_argument("--extra", nargs="*", default=[], help="further files to include (e.g. RESULTS.md)")
    p.add_argument("--out", required=True)
    return p


def main(argv=None) -> int:
    return run_main(get_parser(), lambda a: pack(a.exp_dir, a.model, a.out, a.extra, a.enhance_config,
                                                 a.default_enhance), argv, log, yaml_config=False)


if __name__ == "__main__":
    sys.exit(main())
