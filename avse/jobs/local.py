"""Local execution (``utils/run.pl``): the jobs of an array run in parallel on this
machine, at most ``max_jobs_run`` at a time.

Each job's log holds ``# <command>``, ``# Started at <date>``, the command's stdout
and stderr, then ``# Accounting: time=<s> threads=<n>`` and ``# Ended (code <c>) at
<date>``. Jobs see ``OMP_NUM_THREADS`` (and the MKL/OpenBLAS equivalents) set to
``--num-threads`` (1 by default), as cluster jobs do.  On SIGINT/SIGTERM the running jobs (their whole process groups) are
killed, jobs not yet started are skipped, and the runner exits 130/143.
"""
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Dict, Optional

from avse.jobs.spec import JobSpec, log_header, log_trailer


class Interrupted(Exception):
    """Raised in the main thread when the runner receives SIGINT or SIGTERM."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(threads: int) -> Dict[str, str]:
    """The environment of a job: ours, with the thread-count variables set to
    ``--num-threads`` (default 1), so that parallel jobs do not oversubscribe the CPU."""
    env = dict(os.environ)
    env.update({v: str(threads) for v in THREAD_VARS})
    return env


def status_of(returncode: int) -> int:
    """A ``Popen.returncode`` as bash reports it (killed by signal *s* -> 128+s)."""
    return 128 - returncode if returncode < 0 else returncode


class LocalRunner:
    """Runs a :class:`JobSpec` with a thread per running job."""

    def __init__(self, spec: JobSpec, max_jobs_run: Optional[int] = None, threads: int = 1):
        self.spec = spec
        self.max_jobs_run = max_jobs_run if max_jobs_run and max_jobs_run > 0 else spec.num_tasks
        self.threads = threads
        self._lock = threading.Lock()
        self._procs: Dict[int, subprocess.Popen] = {}
        self._stopping = False

    def _run_one(self, index: int) -> int:
        """Run job *index*, writing its log; return its exit status."""
        with self._lock:
            if self._stopping:
                return 130
        log = self.spec.log_for(index)
        command = self.spec.command_for(index)
        logdir = os.path.dirname(log)
        try:
            if logdir:
                os.makedirs(logdir, exist_ok=True)
            f = open(log, "w")
        except OSError as e:
            print(f"run.pl: cannot write log file {log}: {e}", file=sys.stderr, flush=True)
            return 1
        with f:
            f.write(log_header(command))
            f.flush()
            t0 = time.time()
            with self._lock:
                if self._stopping:
                    status = 130
                    proc = None
                else:
                    try:
                        proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", command],
                                                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                                start_new_session=True, env=thread_env(self.threads))
                        self._procs[index] = proc
                    except OSError as e:
                        f.write(f"run.pl: cannot start bash: {e}\n")
                        status, proc = 127, None
            if proc is not None:
                status = status_of(proc.wait())
                with self._lock:
                    self._procs.pop(index, None)
            f.write(log_trailer(time.time() - t0, self.threads, status))
        return status

    def _kill_all(self) -> None:
        with self._lock:
            self._stopping = True
            procs = list(self._procs.values())
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 3
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def run(self) -> Dict[int, int]:
        """Run every job; return ``{index: exit status}``.  Raises :class:`Interrupted`."""

        def on_signal(signum, _frame):
            raise Interrupted(signum)

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        pool = ThreadPoolExecutor(max_workers=self.max_jobs_run)
        try:
            futures = {i: pool.submit(self._run_one, i) for i in self.spec.indices}
            results = {}
            for i, fut in futures.items():
                while True:  # a short timeout keeps the main thread responsive to signals
                    try:
                        results[i] = fut.result(timeout=0.2)
                        break
                    except FutureTimeout:
                        continue
            return results
        except Interrupted:
            for s in old:  # a second Ctrl-C must not cut the clean-up short
                signal.signal(s, signal.SIG_IGN)
            self._kill_all()
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            pool.shutdown(wait=True, cancel_futures=True)
