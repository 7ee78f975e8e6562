"""Scheduler option mapping in Kaldi's ``queue.conf`` format.

Lines (``#`` starts a comment, at the start of a line or after white space)::

    command qsub -V -cwd -S /bin/bash -j y   # the submit command and fixed options
    option mem=* -l mem_free=$0,ram_free=$0  # --mem V -> these args, $0 replaced by V
    option mem=0                             # --mem 0 -> exactly this value: no args
    default gpu=0                            # the value used when --gpu is not given

A runner option ``--foo-bar V`` is looked up as ``foo_bar``: an exact ``option
foo_bar=V`` line wins over ``option foo_bar=*``; no matching line is an error.  The
config is ``--config FILE`` if given, else ``conf/queue.conf`` (SGE) or
``conf/slurm.conf`` (SLURM) in the current directory if present, else the built-in
defaults below.  A file without a ``command`` line uses the built-in command.
"""
import os
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from avse.jobs import JobsError

BUILTIN = {
    "sge": """
command qsub -V -cwd -S /bin/bash -j y
option name=* -N $0
option mem=* -l mem_free=$0,ram_free=$0
option mem=0
option num_threads=* -pe smp $0
option num_threads=1
option max_jobs_run=* -tc $0
option gpu=* -l gpu=$0 -q g.q
option gpu=0
option time=* -l h_rt=$0
""",
    "slurm": """
command sbatch
option name=* --job-name $0
option mem=* --mem $0
option mem=0
option num_threads=* --cpus-per-task $0
option num_threads=1 --cpus-per-task 1
option gpu=* --gres=gpu:$0
option gpu=0
option time=* --time $0
""",
}

DEFAULT_FILE = {"sge": "conf/queue.conf", "slurm": "conf/slurm.conf"}


@dataclass
class SchedConfig:
    """A parsed config: submit command, ``option`` lines, ``default`` lines."""

    source: str
    command: List[str] = field(default_factory=list)
    options: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)
    defaults: Dict[str, str] = field(default_factory=dict)

    def has_option(self, name: str) -> bool:
        return name in self.options

    def args_for(self, name: str, value: str) -> List[str]:
        """The scheduler arguments for option *name* with *value* (error if unmapped)."""
        lines = self.options.get(name, {})
        if value in lines:
            return list(lines[value])
        if "*" in lines:
            return [a.replace("$0", value) for a in lines["*"]]
        flag = "--" + name.replace("_", "-")
        raise JobsError(f"option {flag} {value}: no 'option {name}=*' or 'option {name}={value}' "
                        f"line in the scheduler config ({self.source})")


def _strip_comment(line: str) -> str:
    for i, c in enumerate(line):
        if c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def parse_config(text: str, source: str) -> SchedConfig:
    """Parse config *text*; *source* names it in error messages."""
    cfg = SchedConfig(source=source)
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        where = f"{source}:{lineno}"
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise JobsError(f"{where}: cannot parse line '{raw.strip()}': {e}") from None
        key, rest = words[0], words[1:]
        if key == "command":
            if not rest:
                raise JobsError(f"{where}: 'command' needs the submit program, e.g. 'command qsub'")
            cfg.command = rest
        elif key in ("option", "default"):
            if not rest or "=" not in rest[0]:
                raise JobsError(f"{where}: expected '{key} name=value ...', got '{raw.strip()}'")
            name, value = rest[0].split("=", 1)
            if not name.isidentifier():
                raise JobsError(f"{where}: bad option name '{name}'")
            if key == "option":
                cfg.options.setdefault(name, {})[value] = rest[1:]
            else:
                if len(rest) > 1:
                    raise JobsError(f"{where}: 'default' takes only name=value, got '{raw.strip()}'")
                cfg.defaults[name] = value
        else:
            raise JobsError(f"{where}: unknown keyword '{key}' (expected command, option or default)")
    return cfg


def load_config(backend: str, path: Optional[str] = None) -> SchedConfig:
    """The config for *backend* (``sge`` or ``slurm``) by the lookup rule above."""
    builtin = parse_config(BUILTIN[backend], f"built-in {backend} defaults")
    if path is None and os.path.isfile(DEFAULT_FILE[backend]):
        path = DEFAULT_FILE[backend]
    if path is None:
        return builtin
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise JobsError(f"cannot read scheduler config {path}: {e.strerror}") from None
    cfg = parse_config(text, path)
    if not cfg.command:
        cfg.command = builtin.command
    return cfg


def map_options(cfg: SchedConfig, given: Dict[str, str], internal: Dict[str, str]) -> List[str]:
    """Scheduler arguments for the options *given* on the command line (plus the
    config's defaults), then for *internal* options (e.g. the job name) which are
    used only where the config has a line for them."""
    values = dict(cfg.defaults)
    values.update(given)
    args: List[str] = []
    for name, value in values.items():
        args += cfg.args_for(name, value)
    for name, value in internal.items():
        if name not in values and cfg.has_option(name):
            args += cfg.args_for(name, value)
    return args
