"""SGE (``utils/queue.pl``) and SLURM (``utils/slurm.pl``) array jobs.

The runner writes a bash job script ``<logdir>/q/<name>.sh`` holding every task's
command line and log path, and submits it once as an array of ``N`` tasks (``qsub
... -t 1:N`` or ``sbatch --parsable --array=1-N[%M]``).  Task *t* (from
``SGE_TASK_ID`` / ``SLURM_ARRAY_TASK_ID``) runs job index ``start + t - 1``, writes the
job log as ``run.pl`` does, then atomically creates ``<logdir>/q/done.<jobid>.<t>``
holding the exit status.

The runner polls every ``$AVSE_RUNNER_POLL`` seconds (default 5) until each task has
a marker or the scheduler no longer knows the job (``qstat -j ID`` fails; ``squeue -h
-j ID`` prints nothing).  It then waits ``$AVSE_RUNNER_GRACE`` seconds (default 10:
shared file systems can show a marker late), re-reads the markers and asks the
scheduler once more; tasks still without a marker failed (killed, out of memory,
node failure...).  For SLURM their state comes from ``sacct``.  On SIGINT/SIGTERM
the array job is cancelled (``qdel`` / ``scancel``).
"""
import os
import re
import shlex
import signal
import subprocess
import time
from typing import Dict, List, Optional, Tuple

from avse.jobs import JobsError
from avse.jobs.local import Interrupted
from avse.jobs.schedconf import SchedConfig, map_options
from avse.jobs.spec import JobSpec, now

_SCRIPT = """#!/usr/bin/env bash
# {prog} job script, written {date}: {n} task(s), job indices {start}..{end}.
cd {cwd} || exit 1
[ -f ./path.sh ] && . ./path.sh
task=${{{task_var}:?{task_var} is not set}}
jobid=${{{jobid_var}:?{jobid_var} is not set}}
if [ "$task" -lt 1 ] || [ "$task" -gt {n} ]; then echo "$0: task $task is not in 1..{n}" >&2; exit 1; fi
qdir={qdir}
threads={threads}
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
cmds=(
{cmds}
)
logs=(
{logs}
)
cmd=${{cmds[$((task - 1))]}}
log=${{logs[$((task - 1))]}}
mkdir -p "$(dirname "$log")"
start=$(date +%s)
printf '# %s\\n# Started at %s\\n' "$cmd" "$(date)" > "$log"
bash -o pipefail -c "$cmd" >> "$log" 2>&1 < /dev/null
status=$?
end=$(date +%s)
printf '# Accounting: time=%d threads=%s\\n# Ended (code %d) at %s\\n' \\
  $((end - start)) "$threads" "$status" "$(date)" >> "$log"
tmp="$qdir/.done.$jobid.$task.$$"
echo "$status" > "$tmp" && mv -f "$tmp" "$qdir/done.$jobid.$task"
exit "$status"
"""


def _call(argv: List[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except FileNotFoundError:
        raise JobsError(f"'{argv[0]}' not found: is the scheduler's client on PATH?") from None


class Sge:
    """Grid Engine: ``qsub -t``, ``SGE_TASK_ID``, ``qstat -j``, ``qdel``."""

    prog, task_var, jobid_var = "queue.pl", "SGE_TASK_ID", "JOB_ID"

    def submit_argv(self, cfg: SchedConfig, opts: Dict[str, str], extra: List[str], spec: JobSpec,
                    script: str, qlog_base: str) -> List[str]:
        args = map_options(cfg, opts, {"name": spec.name})
        return cfg.command + args + extra + ["-o", qlog_base + ".$TASK_ID.log",
                                             "-t", f"1:{spec.num_tasks}", script]

    @staticmethod
    def parse_jobid(out: str) -> Optional[str]:
        m = re.search(r"Your job(?:-array)? (\d+)", out) or re.match(r"\s*(\d+)", out)
        return m.group(1) if m else None

    def is_gone(self, jobid: str) -> bool:
        return _call(["qstat", "-j", jobid]).returncode != 0

    def task_states(self, jobid: str) -> Dict[int, str]:
        return {}

    def cancel(self, jobid: str) -> None:
        _call(["qdel", jobid])


class Slurm:
    """SLURM: ``sbatch --array``, ``SLURM_ARRAY_TASK_ID``, ``squeue``/``sacct``, ``scancel``."""

    prog, task_var, jobid_var = "slurm.pl", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_JOB_ID"

    def submit_argv(self, cfg: SchedConfig, opts: Dict[str, str], extra: List[str], spec: JobSpec,
                    script: str, qlog_base: str) -> List[str]:
        opts = dict(opts)
        throttle = opts.pop("max_jobs_run", None)
        args = map_options(cfg, opts, {"name": spec.name})
        array = f"--array=1-{spec.num_tasks}" + (f"%{throttle}" if throttle else "")
        parsable = [] if "--parsable" in cfg.command + args + extra else ["--parsable"]
        return cfg.command + args + extra + parsable + [array, "-o", qlog_base + ".%a.log", script]

    @staticmethod
    def parse_jobid(out: str) -> Optional[str]:
        m = re.match(r"\s*(\d+)", out)
        return m.group(1) if m else None

    def is_gone(self, jobid: str) -> bool:
        r = _call(["squeue", "-h", "-j", jobid])
        if r.returncode == 0:
            return r.stdout.strip() == ""
        return "invalid job id" in r.stderr.lower()  # other errors: the controller is busy

    def task_states(self, jobid: str) -> Dict[int, str]:
        r = _call(["sacct", "-n", "-P", "-j", jobid, "-o", "JobID,State"])
        states: Dict[int, str] = {}
        for line in r.stdout.splitlines() if r.returncode == 0 else []:
            fields = line.strip().split("|")
            m = re.match(rf"^{jobid}_(\d+)$", fields[0])
            if m and len(fields) > 1 and fields[1].strip():
                states[int(m.group(1))] = fields[1].split()[0]
        return states

    def cancel(self, jobid: str) -> None:
        _call(["scancel", jobid])


BACKENDS = {"sge": Sge, "slurm": Slurm}


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise JobsError(f"${name} must be a number of seconds, got '{value}'") from None


class ClusterRunner:
    """Submits a :class:`JobSpec` as one array job and waits for it."""

    def __init__(self, backend: str, spec: JobSpec, cfg: SchedConfig, opts: Dict[str, str],
                 extra: List[str], threads: int = 1):
        self.sched = BACKENDS[backend]()
        self.spec, self.cfg, self.opts, self.extra, self.threads = spec, cfg, opts, extra, threads
        self.qdir = os.path.abspath(spec.qdir)
        self.poll = _env_seconds("AVSE_RUNNER_POLL", 5.0)
        self.grace = _env_seconds("AVSE_RUNNER_GRACE", 10.0)

    def write_script(self) -> str:
        """Write ``<qdir>/<name>.sh`` (atomically) and return its absolute path."""
        spec = self.spec
        text = _SCRIPT.format(
            prog=self.sched.prog, date=now(), n=spec.num_tasks, start=spec.start, end=spec.end,
            cwd=shlex.quote(os.getcwd()), task_var=self.sched.task_var, jobid_var=self.sched.jobid_var,
            qdir=shlex.quote(self.qdir), threads=self.threads,
            cmds="\n".join(shlex.quote(spec.command_for(i)) for i in spec.indices),
            logs="\n".join(shlex.quote(spec.log_for(i)) for i in spec.indices))
        path = os.path.join(self.qdir, spec.name + ".sh")
        tmp = f"{path}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        return path

    def submit(self) -> str:
        """Prepare directories, remove stale logs, submit; return the job id."""
        os.makedirs(self.qdir, exist_ok=True)
        for i in self.spec.indices:
            log = self.spec.log_for(i)
            if os.path.dirname(log):
                os.makedirs(os.path.dirname(log), exist_ok=True)
            if os.path.lexists(log):
                os.unlink(log)
        script = self.write_script()
        argv = self.sched.submit_argv(self.cfg, self.opts, self.extra, self.spec, script,
                                      os.path.join(self.qdir, self.spec.name))
        r = _call(argv)
        jobid = self.sched.parse_jobid(r.stdout) if r.returncode == 0 else None
        if jobid is None:
            raise JobsError(f"submission failed (exit {r.returncode}): {shlex.join(argv)}\n"
                            f"{(r.stdout + r.stderr).strip()}")
        return jobid

    def _read_markers(self, jobid: str, pending: set, results: Dict[int, int]) -> None:
        prefix = f"done.{jobid}."
        try:
            names = os.listdir(self.qdir)  # a listing also refreshes NFS directory caches
        except OSError:
            return
        for name in names:
            if not name.startswith(prefix) or not name[len(prefix):].isdigit():
                continue
            task = int(name[len(prefix):])
            if task not in pending:
                continue
            path = os.path.join(self.qdir, name)
            try:
                with open(path) as f:
                    status = int(f.read().strip())
            except (OSError, ValueError):
                status = 1
            results[task] = status
            pending.discard(task)
            try:
                os.unlink(path)
            except OSError:
                pass

    def wait(self, jobid: str) -> Tuple[Dict[int, int], Dict[int, str]]:
        """Poll until every task is accounted for: ``({task: status}, {task: reason})``."""
        pending = set(range(1, self.spec.num_tasks + 1))
        results: Dict[int, int] = {}
        lost: Dict[int, str] = {}
        while True:
            self._read_markers(jobid, pending, results)
            if not pending:
                break
            if self.sched.is_gone(jobid):
                time.sleep(self.grace)  # a marker written just before the job left
                self._read_markers(jobid, pending, results)
                if pending and self.sched.is_gone(jobid):
                    states = self.sched.task_states(jobid)
                    base = os.path.join(self.qdir, self.spec.name)
                    for t in sorted(pending):
                        state = states.get(t, "no longer in the queue")
                        lost[t] = f"{state} (scheduler output: {base}.{t}.log)"
                    break
                continue
            time.sleep(self.poll)
        return results, lost

    def run(self) -> Tuple[Dict[int, int], Dict[int, str], str]:
        """Submit and wait; keys are job indices.  Returns ``(statuses, lost, jobid)``;
        a lost job (no marker) appears in ``lost`` with the scheduler's reason only."""

        def on_signal(signum, _frame):
            raise Interrupted(signum)

        jobid = None
        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            jobid = self.submit()
            results, lost = self.wait(jobid)
        except Interrupted:
            for s in old:  # a second Ctrl-C must not cut the clean-up short
                signal.signal(s, signal.SIG_IGN)
            if jobid is not None:
                self.sched.cancel(jobid)
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        off = self.spec.start - 1
        return ({t + off: s for t, s in results.items()}, {t + off: r for t, r in lost.items()}, jobid)
