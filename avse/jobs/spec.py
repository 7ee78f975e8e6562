"""The job array given on a runner's command line, and the strings built from it.

``JOB=1:4 exp/log/x.JOB.log cmd args...`` becomes four tasks; in task *i* every
occurrence of the variable name (``JOB``) in the log path and in each argument is
replaced by *i* (plain substring replacement, as Kaldi does).  The command line is
rebuilt Kaldi-style: arguments without white space are used verbatim (so a quoted
``'|'`` becomes a real pipe and ``'>'`` a redirection), arguments with white space
(and empty ones) are single-quoted; it runs under ``bash -o pipefail -c``.
"""
import os
import re
import shlex
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

from avse.jobs import JobsError

_RANGE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")


def parse_range(arg: str):
    """``JOB=1:4`` -> ``("JOB", 1, 4)``; ``JOB=3`` -> ``("JOB", 3, 3)``; else None."""
    m = _RANGE_RE.match(arg)
    if not m:
        return None
    start = int(m.group(2))
    end = int(m.group(3)) if m.group(3) is not None else start
    if start > end:
        raise JobsError(f"bad job range '{arg}': the first index must not exceed the last")
    return m.group(1), start, end


def quote_arg(arg: str) -> str:
    """An argument as it appears in the job's command line (see module docstring)."""
    if arg == "" or re.search(r"\s", arg):
        return shlex.quote(arg)
    return arg


def build_command(args: Sequence[str]) -> str:
    """Join arguments into one shell command line (Kaldi's rule)."""
    return " ".join(quote_arg(a) for a in args)


def now() -> str:
    """The date as ``date`` prints it in the C locale, for log headers."""
    return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def log_header(command: str) -> str:
    """The first two lines of every job log."""
    return f"# {command}\n# Started at {now()}\n"


def log_trailer(seconds: float, threads: int, status: int) -> str:
    """The last two lines of every job log."""
    return f"# Accounting: time={int(round(seconds))} threads={threads}\n# Ended (code {status}) at {now()}\n"


@dataclass
class JobSpec:
    """One runner invocation: variable name (None for a single job), range, log, command."""

    var: Optional[str]
    start: int
    end: int
    log_template: str
    args: List[str]

    def __post_init__(self):
        if not self.args:
            raise JobsError("no command given (usage: JOB=1:N log/x.JOB.log command args...)")
        if self.var is not None and self.end > self.start and self.var not in self.log_template:
            raise JobsError(f"you are running {self.num_tasks} jobs but the log file "
                            f"'{self.log_template}' does not contain '{self.var}': "
                            f"they would all write to the same file")

    @property
    def indices(self) -> range:
        """The job indices, e.g. ``range(1, 5)`` for ``JOB=1:4``."""
        return range(self.start, self.end + 1)

    @property
    def num_tasks(self) -> int:
        return self.end - self.start + 1

    def _subst(self, text: str, index: int) -> str:
        return text.replace(self.var, str(index)) if self.var else text

    def log_for(self, index: int) -> str:
        """The log path of job *index*."""
        return self._subst(self.log_template, index)

    def command_for(self, index: int) -> str:
        """The shell command line of job *index*."""
        return build_command([self._subst(a, index) for a in self.args])

    @property
    def name(self) -> str:
        """A scheduler job name from the log file name (``x.JOB.log`` -> ``x``)."""
        base = os.path.basename(self.log_template)
        if base.endswith(".log"):
            base = base[:-4]
        if self.var:
            base = base.replace(self.var, "")
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)
        base = re.sub(r"\.{2,}", ".", base).strip("._-")
        if not base:
            base = "job"
        return "j" + base if base[0].isdigit() else base

    @property
    def qdir(self) -> str:
        """``<logdir>/q``: the deepest log directory that does not depend on the job."""
        d = os.path.dirname(self.log_template)
        while self.var and self.var in d:
            d = os.path.dirname(d)
        return os.path.join(d or ".", "q")

    def failure_summary(self, prog: str, failed: Sequence[int]) -> str:
        """``run.pl: 2 / 4 failed, log is in exp/log/x.{2,4}.log``."""
        failed = sorted(failed)
        if self.var is None or self.var not in self.log_template:
            logs = self.log_for(failed[0]) if self.var else self.log_template
            what = "job failed" if self.num_tasks == 1 else f"{len(failed)} / {self.num_tasks} failed"
            return f"{prog}: {what}, log is in {logs}"
        if len(failed) == 1:
            logs = self.log_for(failed[0])
        else:
            logs = self.log_template.replace(self.var, "{" + ",".join(map(str, failed)) + "}")
        return f"{prog}: {len(failed)} / {self.num_tasks} failed, log is in {logs}"
