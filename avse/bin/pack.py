"""Stage 7: pack a trained model with what is needed to use and cite it.

    python -m avse.bin.pack --exp_dir exp/prior --model model.pt \\
        [--extra conf/enhance.yaml RESULTS.md ...] --out exp/prior/packed.tar.gz

The archive holds the model, the resolved training config (``config.yaml``), the
loss curve files found beside it, any ``--extra`` files, and ``manifest.json`` with
the SHA-256 of every member, the avse version and the git commit.
"""
import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tarfile
import time

from avse.utils.cli import run_main
from avse.errors import StageError
from avse.utils.fileio import atomic_path
from avse.version import __version__

log = logging.getLogger("avse.pack")
BESIDE = ("config.yaml", "train_log.csv", "loss.png")


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__)), check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pack(exp_dir: str, model: str, out: str, extra=()) -> dict:
    """Write the archive atomically; return the manifest."""
    model_path = os.path.join(exp_dir, model)
    if not os.path.isfile(model_path):
        raise StageError(f"{model_path}: model not found; train the prior first (stage 4)")
    members = {f"model/{model}": model_path}
    for name in BESIDE:
        p = os.path.join(exp_dir, name)
        if os.path.isfile(p):
            members[f"model/{name}"] = p
    for p in extra:
        if not os.path.isfile(p):
            raise StageError(f"{p}: extra file not found")
        members[f"extra/{os.path.basename(p)}"] = p
    manifest = {"avse_version": __version__, "git_commit": git_commit(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "files": {arc: {"sha256": sha256(p), "bytes": os.path.getsize(p)} for arc, p in members.items()}}
    with atomic_path(out) as tmp:
        with tarfile.open(tmp, "w:gz") as tar:
            for arc, p in members.items():
                tar.add(p, arcname=arc)
            mpath = tmp + ".manifest.json"
            with open(mpath, "w") as f:
                json.dump(manifest, f, indent=2, sort_keys=True)
            tar.add(mpath, arcname="manifest.json")
            os.unlink(mpath)
    log.info("packed %d files into %s", len(members), out)
    return manifest


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--model", default="model.pt")
    p.add_argument("--extra", nargs="*", default=[])
    p.add_argument("--out", required=True)
    return p


def main(argv=None) -> int:
    return run_main(get_parser(), lambda a: pack(a.exp_dir, a.model, a.out, a.extra), argv, log,
                    yaml_config=False)


if __name__ == "__main__":
    sys.exit(main())
