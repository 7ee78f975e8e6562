#!/usr/bin/env python3
"""A tiny fake of SGE and SLURM for the job-runner tests (standard library only).

Invoked through the wrappers in this directory as ``qsub``, ``qstat``, ``qdel``,
``sbatch``, ``squeue``, ``sacct`` and ``scancel``.  State lives under
``$FAKE_SCHED_DIR`` (required):

* ``submissions.jsonl`` -- one ``{"prog", "argv", "jobid"}`` line per submission;
* ``jobs/<id>/task.<t>`` -- a task's state (PENDING, RUNNING, COMPLETED, FAILED, ...);
* ``jobs/<id>/finished`` -- present once no task of the job is left in the queue.

A submission starts a detached manager process that runs the array's tasks (``bash
<script>`` with ``SGE_TASK_ID``/``JOB_ID`` or ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_JOB_ID``
set, output appended to the ``-o`` file), honouring the throttle (``-tc N`` /
``%N``).  ``FAKE_SCHED_KILL=2,3`` (read at submission) makes tasks 2 and 3 "killed by
the scheduler": they never run and end in state ``$FAKE_SCHED_KILL_STATE`` (default
FAILED).  ``FAKE_SCHED_SUBMIT_FAIL=1`` makes the submission itself fail.
``FAKE_SCHED_DROP_EARLY=1`` makes the job leave the queue as soon as its tasks have
started (as if the scheduler dropped it just before their markers appear).
"""
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

STATE = os.environ.get("FAKE_SCHED_DIR")


def jobdir(jobid):
    return os.path.join(STATE, "jobs", str(jobid))


def write(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def new_jobid():
    os.makedirs(os.path.join(STATE, "jobs"), exist_ok=True)
    with open(os.path.join(STATE, "counter.lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jobid = int(read(os.path.join(STATE, "counter"), "1000")) + 1
        write(os.path.join(STATE, "counter"), str(jobid))
    return jobid


def option(argv, names):
    """The value of the first of *names* in *argv* (``-x v``, ``--xx=v`` or ``--xx v``)."""
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                return argv[i + 1]
            if n.startswith("--") and a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def parse_range(spec):
    """``1:4``, ``1-4``, ``1-4:1`` or ``1-4%2`` -> (first, last, throttle)."""
    throttle = None
    if "%" in spec:
        spec, throttle = spec.split("%")
    spec = spec.split(":")[0] if "-" in spec else spec
    first, last = (spec.replace(":", "-").split("-") + [None])[:2]
    return int(first), int(last or first), int(throttle) if throttle else None


def submit(prog, argv):
    if STATE is None:
        sys.exit(f"{prog}: FAKE_SCHED_DIR is not set")
    if os.environ.get("FAKE_SCHED_SUBMIT_FAIL"):
        sys.exit(f"{prog}: error: submission refused (FAKE_SCHED_SUBMIT_FAIL)")
    if not argv or not os.path.isfile(argv[-1]):
        sys.exit(f"{prog}: error: the last argument must be the job script")
    kind = "sge" if prog == "qsub" else "slurm"
    if kind == "sge":
        first, last, _ = parse_range(option(argv, ["-t"]) or "1")
        tc = option(argv, ["-tc"])
        throttle = int(tc) if tc else None
        name = option(argv, ["-N"]) or os.path.basename(argv[-1])
    else:
        first, last, throttle = parse_range(option(argv, ["--array", "-a"]) or "1")
        name = option(argv, ["--job-name", "-J"]) or os.path.basename(argv[-1])
    jobid = new_jobid()
    d = jobdir(jobid)
    os.makedirs(d)
    kill = {int(t) for t in os.environ.get("FAKE_SCHED_KILL", "").split(",") if t.strip()}
    job = {"kind": kind, "argv": argv, "first": first, "last": last, "throttle": throttle,
           "name": name, "cwd": os.getcwd(), "output": option(argv, ["-o", "--output"]),
           "drop_early": bool(os.environ.get("FAKE_SCHED_DROP_EARLY")),
           "kill": sorted(kill), "kill_state": os.environ.get("FAKE_SCHED_KILL_STATE", "FAILED")}
    write(os.path.join(d, "job.json"), json.dumps(job))
    for t in range(first, last + 1):
        write(os.path.join(d, f"task.{t}"), "PENDING")
    with open(os.path.join(STATE, "submissions.jsonl"), "a") as f:
        f.write(json.dumps({"prog": prog, "argv": argv, "jobid": jobid}) + "\n")
    mgr = subprocess.Popen([sys.executable, os.path.abspath(__file__), "_manage", str(jobid)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(d, "manager.err"), "w"), start_new_session=True)
    write(os.path.join(d, "manager.pid"), str(mgr.pid))
    if kind == "sge":
        print(f'Your job-array {jobid}.{first}-{last}:1 ("{name}") has been submitted')
    elif "--parsable" in argv:
        print(jobid)
    else:
        print(f"Submitted batch job {jobid}")


def output_path(job, jobid, t):
    path = job["output"] or os.path.join(job["cwd"], f"{job['name']}.o{jobid}.{t}")
    for k, v in {"$TASK_ID": t, "$JOB_ID": jobid, "$JOB_NAME": job["name"],
                 "%a": t, "%A": jobid, "%j": jobid, "%x": job["name"]}.items():
        path = path.replace(k, str(v))
    return path if os.path.isabs(path) else os.path.join(job["cwd"], path)


def manage(jobid):
    """Run the array's tasks (a detached process started by the submission)."""
    d = jobdir(jobid)
    job = json.loads(read(os.path.join(d, "job.json")))
    todo = []
    for t in range(job["first"], job["last"] + 1):
        if t in job["kill"]:
            write(os.path.join(d, f"task.{t}"), job["kill_state"])
        else:
            todo.append(t)
    limit = job["throttle"] or len(todo) or 1
    running = {}
    while todo or running:
        while todo and len(running) < limit:
            t = todo.pop(0)
            env = dict(os.environ)
            if job["kind"] == "sge":
                env.update(SGE_TASK_ID=str(t), JOB_ID=str(jobid))
            else:
                env.update(SLURM_ARRAY_TASK_ID=str(t), SLURM_ARRAY_JOB_ID=str(jobid),
                           SLURM_JOB_ID=str(jobid * 1000 + t))
            out = open(output_path(job, jobid, t), "a")
            running[t] = subprocess.Popen(["bash", job["argv"][-1]], cwd=job["cwd"], env=env,
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            out.close()
            write(os.path.join(d, f"task.{t}"), "RUNNING")
        if job["drop_early"] and not todo:
            write(os.path.join(d, "finished"), "")
        for t, p in list(running.items()):
            if p.poll() is not None:
                write(os.path.join(d, f"task.{t}"), "COMPLETED" if p.returncode == 0 else "FAILED")
                del running[t]
        time.sleep(0.02)
    write(os.path.join(d, "finished"), "")


def tasks(jobid):
    d = jobdir(jobid)
    job = json.loads(read(os.path.join(d, "job.json")))
    return {t: read(os.path.join(d, f"task.{t}"), "PENDING").strip()
            for t in range(job["first"], job["last"] + 1)}


def known(jobid):
    return STATE is not None and jobid.isdigit() and os.path.isfile(os.path.join(jobdir(jobid), "job.json"))


def active(jobid):
    return known(jobid) and not os.path.exists(os.path.join(jobdir(jobid), "finished"))


def qstat(argv):
    jobid = option(argv, ["-j"]) or ""
    if not active(jobid):
        sys.exit(f"Following jobs do not exist or permissions are not sufficient: \n{jobid}")
    print(f"job_number:                 {jobid}")
    for t, s in tasks(jobid).items():
        print(f"task {t}: {s}")


def squeue(argv):
    jobid = option(argv, ["-j", "--jobs"]) or ""
    if not known(jobid):
        sys.exit("slurm_load_jobs error: Invalid job id specified")
    if active(jobid):
        for t, s in tasks(jobid).items():
            if s in ("PENDING", "RUNNING"):
                print(f"{jobid}_{t} {s}")


def sacct(argv):
    jobid = option(argv, ["-j", "--jobs"]) or ""
    if not known(jobid):
        return
    for t, s in tasks(jobid).items():
        print(f"{jobid}_{t}|{s}")
        if s in ("COMPLETED", "FAILED", "RUNNING"):
            print(f"{jobid}_{t}.batch|{s}")


def cancel(argv):
    for jobid in argv:
        if not active(jobid):
            continue
        pid = int(read(os.path.join(jobdir(jobid), "manager.pid"), "0"))
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for t, s in tasks(jobid).items():
            if s in ("PENDING", "RUNNING"):
                write(os.path.join(jobdir(jobid), f"task.{t}"), "CANCELLED")
        write(os.path.join(jobdir(jobid), "finished"), "")


def main():
    prog, argv = sys.argv[1], sys.argv[2:]
    if prog == "_manage":
        return manage(int(argv[0]))
    if STATE is None:
        sys.exit(f"{prog}: FAKE_SCHED_DIR is not set")
    if prog in ("qsub", "sbatch"):
        return submit(prog, argv)
    {"qstat": qstat, "squeue": squeue, "sacct": sacct, "qdel": cancel, "scancel": cancel}[prog](argv)


if __name__ == "__main__":
    main()
