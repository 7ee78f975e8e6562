"""Command line of the job runners (``utils/run.pl``, ``utils/queue.pl``, ``utils/slurm.pl``)::

    python -m avse.jobs.runner --backend {local,sge,slurm} [options] \\
        [JOB=1:N] log/name.JOB.log command args...

Options (``--name value`` or ``--name=value``; ``-`` and ``_`` are interchangeable):

  --config FILE       scheduler config (Kaldi queue.conf format; see avse.jobs.schedconf)
  --max-jobs-run N    at most N jobs at once (local: processes; SGE: -tc; SLURM: %N)
  --num-threads N     threads per job (scheduler resource; reported in the log)
  --mem 4G, --gpu N, --time T, --anything V
                      scheduler resources, mapped through the config; ignored locally
  -x VALUE            (SGE/SLURM) passed to qsub/sbatch as is, e.g. ``-q all.q``

``JOB`` may be any variable name (``SPLIT=1:4``; ``JOB=3`` is ``JOB=3:3``); it is
replaced in the log path and in every argument.  Without it a single job runs.  Exit
status 0 when every job succeeded, else 1 with the failed jobs' logs on stderr
(130/143 when interrupted).  Environment: ``AVSE_RUNNER_POLL`` and ``AVSE_RUNNER_GRACE``
(seconds) tune scheduler polling (see avse.jobs.cluster).
"""
import sys
from typing import Dict, List, Optional, Tuple

from avse.jobs import JobsError
from avse.jobs.local import Interrupted
from avse.jobs.spec import JobSpec, parse_range

PROG = {"local": "run.pl", "sge": "queue.pl", "slurm": "slurm.pl"}
_POSITIVE = ("max_jobs_run", "num_threads")


def usage(prog: str) -> str:
    """The --help text."""
    options = "Options" + __doc__.split("Options", 1)[1]
    return (f"Usage: {prog} [options] [JOB=1:N] <log-file> <command> [args...]\n"
            f"  e.g. {prog} --mem 4G JOB=1:8 exp/log/enhance.JOB.log python -m avse.bin.x --job JOB\n\n"
            + options)


def parse_args(argv: List[str]) -> Tuple[str, Dict[str, str], List[str], JobSpec]:
    """``(backend, options, pass-through scheduler args, JobSpec)``; raises JobsError."""
    args = list(argv)
    backend = "local"
    if args[:1] == ["--backend"] and len(args) > 1:
        backend = args[1]
        args = args[2:]
    if backend not in PROG:
        raise JobsError(f"unknown backend '{backend}' (expected local, sge or slurm)")
    opts: Dict[str, str] = {}
    extra: List[str] = []
    while args and args[0].startswith("-") and parse_range(args[0]) is None:
        flag = args.pop(0)
        if flag in ("--help", "-h"):
            print(usage(PROG[backend]))
            raise SystemExit(0)
        if flag == "--":
            break
        if flag.startswith("--") and "=" in flag:
            flag, value = flag.split("=", 1)
        elif args:
            value = args.pop(0)
        else:
            raise JobsError(f"option {flag} needs a value")
        if not flag.startswith("--"):
            extra += [flag, value]
            continue
        name = flag[2:].replace("-", "_")
        if not name.isidentifier():
            raise JobsError(f"bad option {flag}")
        if name in _POSITIVE and not (value.isdigit() and int(value) > 0):
            raise JobsError(f"option {flag} needs a positive integer, got '{value}'")
        if name == "gpu" and not value.isdigit():
            raise JobsError(f"option {flag} needs a number of GPUs, got '{value}'")
        opts[name] = value
    if not args:
        raise JobsError("no log file and command given\n" + usage(PROG[backend]).splitlines()[0])
    rng = parse_range(args[0])
    if rng is not None:
        var, start, end = rng
        args.pop(0)
    else:
        var, start, end = None, 1, 1
    if not args:
        raise JobsError("no log file given\n" + usage(PROG[backend]).splitlines()[0])
    log = args.pop(0)
    if parse_range(log) is not None:
        raise JobsError(f"expected a log file, got a second job range '{log}'")
    return backend, opts, extra, JobSpec(var, start, end, log, args)


def run(backend: str, opts: Dict[str, str], extra: List[str], spec: JobSpec) -> Tuple[Dict[int, int], Dict[int, str], Optional[str]]:
    """Run the jobs; ``({index: status}, {index: reason lost}, scheduler job id)``."""
    threads = int(opts.get("num_threads", "1"))
    if backend == "local":
        from avse.jobs.local import LocalRunner
        mjr = opts.get("max_jobs_run")
        return LocalRunner(spec, int(mjr) if mjr else None, threads).run(), {}, None
    from avse.jobs.cluster import ClusterRunner
    from avse.jobs.schedconf import load_config
    sched_opts = {k: v for k, v in opts.items() if k != "config"}
    cfg = load_config(backend, opts.get("config"))
    return ClusterRunner(backend, spec, cfg, sched_opts, extra, threads).run()


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prog = PROG.get(argv[1], "run.pl") if argv[:1] == ["--backend"] and len(argv) > 1 else "run.pl"
    try:
        backend, opts, extra, spec = parse_args(argv)
        statuses, lost, jobid = run(backend, opts, extra, spec)
    except JobsError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Interrupted as e:
        print(f"{prog}: interrupted by signal {e.signum}; the running jobs were stopped", file=sys.stderr)
        return 128 + e.signum
    failed = sorted([i for i, s in statuses.items() if s != 0] + list(lost))
    if not failed:
        return 0
    for i, reason in sorted(lost.items()):
        print(f"{prog}: job {i} (scheduler job {jobid}, task {i - spec.start + 1}) left the queue "
              f"without finishing: {reason}", file=sys.stderr)
    print(spec.failure_summary(prog, failed), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
