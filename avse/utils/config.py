"""One config style for every command: YAML file + command-line flags.

Each ``avse.bin.<verb>`` declares its options on an ``argparse`` parser. ``--config
FILE`` loads a YAML mapping whose keys must be declared options (a typo is an error,
not a silently ignored key); flags on the command line override it; nested keys are
reachable as dotted flags (``--model_conf.nf 64``). The resolved config is written
next to the outputs by :func:`save_config` so a run can be repeated exactly.

Registry-based choices follow ESPnet2: ``model: ncsnpp`` + ``model_conf: {...}``.
"""
import argparse
import copy
import os
import sys
from typing import Any, Dict, List, Sequence

import yaml

from avse.errors import InputError
from avse.utils.fileio import atomic_open


def str2bool(v: str | bool) -> bool:
    """argparse type for true/false flags (Kaldi style: only true/false accepted)."""
    if isinstance(v, bool):
        return v
    s = str(v).lower()
    if s in ("true", "1", "yes"):
        return True
    if s in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {v!r}")


def yaml_value(v: str | Any) -> Any:
    """argparse type for structured values: a YAML string (``'{a: 1}'``, ``'[1, 2]'``)."""
    if not isinstance(v, str):
        return v
    try:
        return yaml.safe_load(v)
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f"not valid YAML: {v!r} ({e})")


def none_or(typ):
    """argparse type: ``none``/``null`` -> None, else ``typ(v)``."""

    def conv(v):
        if v is None or (isinstance(v, str) and v.lower() in ("none", "null", "")):
            return None
        return typ(v)

    conv.__name__ = f"none_or_{getattr(typ, '__name__', 'value')}"
    return conv


def load_yaml(path: str) -> Dict[str, Any]:
    """Load a YAML mapping; an empty file gives ``{}``."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: config file not found")
    with open(path, encoding="utf-8") as f:
        try:
            cfg = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise InputError(f"{path}: invalid YAML: {e}") from e
    if cfg is None:
        return {}
    if not isinstance(cfg, dict):
        raise InputError(f"{path}: a config must be a mapping, got {type(cfg).__name__}")
    return cfg


def _set_dotted(ns: argparse.Namespace, dotted: str, value: Any, dests: set) -> None:
    head, *path = dotted.split(".")
    if head not in dests:
        raise InputError(f"unknown option --{dotted}")
    root = getattr(ns, head)
    if root is None:
        root = {}
    if not isinstance(root, dict):
        raise InputError(f"--{dotted}: option --{head} is not a mapping")
    root = dict(root)
    node = root
    for p in path[:-1]:
        node[p] = dict(node.get(p) or {})
        node = node[p]
    node[path[-1]] = yaml_value(value)
    setattr(ns, head, root)


def merge_mappings(base: Dict[str, Any], over: Dict[str, Any]) -> Dict[str, Any]:
    """``base`` with ``over`` laid on top, recursively for keys that are mappings in both
    (values taken from ``over`` are copies)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge_mappings(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else copy.deepcopy(v)
    return out


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` with YAML defaults from ``--config`` and dotted overrides.

    Precedence: parser defaults < YAML file < command-line flags. A mapping option given
    whole on the command line (``--method_conf '{n_samples: 2}'``) is laid over the YAML
    file's mapping (:func:`merge_mappings`), as the dotted form ``--method_conf.n_samples 2``
    is: only the keys given change.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a.dest == "config" for a in parser._actions):
        parser.add_argument("--config", default=None, help="YAML file of option values")
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    dests = {a.dest for a in parser._actions}
    if known.config:
        cfg = load_yaml(known.config)
        unknown = [k for k in cfg if k not in dests]
        if unknown:
            raise InputError(f"{known.config}: unknown keys {unknown}; known: {sorted(dests - {'help'})}")
        parser.set_defaults(**cfg)
    ns, rest = parser.parse_known_args(argv)
    if known.config:
        for k, v in cfg.items():
            given = getattr(ns, k)
            if isinstance(v, dict) and isinstance(given, dict) and given is not v:
                setattr(ns, k, merge_mappings(v, given))
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok.startswith("--") and "." in tok.split("=", 1)[0]:
            if "=" in tok:
                key, val = tok[2:].split("=", 1)
                i += 1
            else:
                if i + 1 >= len(rest):
                    raise InputError(f"option {tok} needs a value")
                key, val = tok[2:], rest[i + 1]
                i += 2
            _set_dotted(ns, key, val, dests)
        else:
            parser.error(f"unrecognized arguments: {' '.join(rest[i:])}")
    return ns


def to_dict(ns: argparse.Namespace | Dict[str, Any]) -> Dict[str, Any]:
    d = dict(vars(ns)) if isinstance(ns, argparse.Namespace) else dict(ns)
    d.pop("config", None)
    return d


def save_config(cfg: argparse.Namespace | Dict[str, Any], out_dir: str, name: str = "config.yaml") -> str:
    """Write the resolved config (``--config`` itself removed) to ``out_dir/name``."""
    path = os.path.join(out_dir, name)
    with atomic_open(path) as f:
        yaml.safe_dump(to_dict(cfg), f, sort_keys=True, default_flow_style=False)
    return path


def plain(v):
    """Tuples -> lists and keys -> str, recursively: configs compare equal after a YAML or
    JSON round trip."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def add_job_args(parser: argparse.ArgumentParser) -> None:
    """Options shared by every per-utterance command run as ``$cmd JOB=1:N``."""
    parser.add_argument("--key_file", default=None,
                        help="scp/list whose keys this job processes (from utils/split_scp.pl); "
                             "default: all keys")
    parser.add_argument("--job", type=int, default=1, help="job index (1-based), for logs and fragments")
    parser.add_argument("--seed", type=int, default=0, help="global random seed")
    parser.add_argument("--progress", type=str2bool, default=True, help="show a progress bar")
    parser.add_argument("--merge", type=str2bool, default=False,
                        help="merge the jobs' rows into the output data dir (after all jobs)")
    parser.add_argument("--on_error", default="fail", choices=["fail", "skip"],
                        help="an utterance with bad input stops the job (fail) or is listed and left out (skip)")
    parser.add_argument("--verbose", type=int, default=1, help="log level: 0 warnings, 1 info, 2 debug")


def flatten(d: Dict[str, Any], prefix: str = "") -> List[str]:
    """Render a nested dict as ``key.sub=value`` strings (for logs)."""
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += flatten(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}={v}")
    return out
