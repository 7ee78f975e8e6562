"""utils/run.pl, utils/queue.pl and utils/slurm.pl run as a recipe runs them.

The SGE/SLURM cases use the fake schedulers in test/jobs/fake_bin (placed first on
PATH): they run array tasks in the background and answer qstat/squeue/sacct from
a state directory, see fake_bin/fakesched.py.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from testutils import REPO

FAKE_BIN = os.path.join(REPO, "test", "jobs", "fake_bin")
TRAILER = re.compile(r"# Accounting: time=\d+ threads=(\d+)\n# Ended \(code (\d+)\) at .+\n$")


@pytest.fixture
def env(tmp_path, venv_env):
    e = dict(venv_env)
    e.update(PATH=FAKE_BIN + os.pathsep + e["PATH"], FAKE_SCHED_DIR=str(tmp_path / "sched"),
             FAKE_SCHED_PYTHON=sys.executable, AVSE_RUNNER_POLL="0.05", AVSE_RUNNER_GRACE="0.3")
    for k in ("FAKE_SCHED_KILL", "FAKE_SCHED_KILL_STATE", "FAKE_SCHED_SUBMIT_FAIL", "FAKE_SCHED_DROP_EARLY"):
        e.pop(k, None)
    yield e
    # stop any fake-scheduler manager these tests left running (by its recorded pid)
    for root, _dirs, files in os.walk(tmp_path / "sched"):
        if "manager.pid" in files and "finished" not in files:
            try:
                os.killpg(int(open(os.path.join(root, "manager.pid")).read()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def run(tool, args, env, cwd, **kw):
    return subprocess.run([os.path.join(REPO, "utils", tool), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=30, **kw)


def submissions(tmp_path):
    with open(tmp_path / "sched" / "submissions.jsonl") as f:
        return [json.loads(line) for line in f]


def check_log(path, command, output, code=0, threads=1):
    text = open(path).read()
    lines = text.splitlines()
    assert lines[0] == f"# {command}"
    assert lines[1].startswith("# Started at ")
    assert "\n".join(lines[2:-2]) == output
    m = TRAILER.search(text)
    assert m, text
    assert (int(m.group(1)), int(m.group(2))) == (threads, code)


# ---------------------------------------------------------------- run.pl (local)

def test_run_pl_substitutes_job_in_log_and_command(tmp_path, env):
    r = run("run.pl", ["JOB=1:3", "exp/log/x.JOB.log", "echo", "job=JOB", ">", "out.JOB"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    for j in (1, 2, 3):
        assert (tmp_path / f"out.{j}").read_text() == f"job={j}\n"
        check_log(tmp_path / f"exp/log/x.{j}.log", f"echo job={j} > out.{j}", "")


def test_run_pl_single_job_pipes_and_quoting(tmp_path, env):
    r = run("run.pl", ["--num-threads", "3", "log/one.log", "echo", "Hello   World", "|", "tr", "a-z", "A-Z"],
            env, tmp_path)
    assert r.returncode == 0, r.stderr
    check_log(tmp_path / "log/one.log", "echo 'Hello   World' | tr a-z A-Z", "HELLO   WORLD", threads=3)
    # pipefail: a failing first stage fails the job; stderr goes to the log too
    r = run("run.pl", ["log/two.log", "sh", "-c", "echo oops >&2; exit 3", "|", "cat"], env, tmp_path)
    assert r.returncode == 1
    check_log(tmp_path / "log/two.log", "sh -c 'echo oops >&2; exit 3' | cat", "oops", code=3)
    assert "job failed, log is in log/two.log" in r.stderr


def test_run_pl_failures_name_the_failed_logs(tmp_path, env):
    r = run("run.pl", ["JOB=1:4", "exp/log/f.JOB.log", "sh", "-c", "echo JOB; exit $((JOB % 2))"], env, tmp_path)
    assert r.returncode == 1
    assert "run.pl: 2 / 4 failed, log is in exp/log/f.{1,3}.log" in r.stderr
    check_log(tmp_path / "exp/log/f.3.log", "sh -c 'echo 3; exit $((3 % 2))'", "3", code=1)
    check_log(tmp_path / "exp/log/f.2.log", "sh -c 'echo 2; exit $((2 % 2))'", "2", code=0)
    r = run("run.pl", ["JOB=1:4", "exp/log/g.JOB.log", "test", "JOB", "-ne", "2"], env, tmp_path)
    assert r.returncode == 1 and "1 / 4 failed, log is in exp/log/g.2.log" in r.stderr


@pytest.mark.parametrize("tool", ["run.pl", "queue.pl", "slurm.pl"])
def test_jobs_get_num_threads_as_omp_num_threads(tmp_path, env, tool):
    cmd = "echo $OMP_NUM_THREADS $MKL_NUM_THREADS"
    r = run(tool, ["JOB=1:2", "log/t.JOB.log", "sh", "-c", cmd], {**env, "OMP_NUM_THREADS": "7"}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "\n1 1\n" in (tmp_path / "log/t.2.log").read_text()
    r = run(tool, ["--num-threads", "3", "log/u.log", "sh", "-c", cmd], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "\n3 3\n" in (tmp_path / "log/u.log").read_text()


def test_run_pl_other_variable_name_and_offset_range(tmp_path, env):
    r = run("run.pl", ["SPLIT=2:3", "log/s.SPLIT.log", "echo", "SPLIT", "JOB"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    check_log(tmp_path / "log/s.2.log", "echo 2 JOB", "2 JOB")
    assert not (tmp_path / "log/s.1.log").exists()


def test_run_pl_max_jobs_run_serialises(tmp_path, env):
    # each job holds a lock directory while it runs: a concurrent job could not take it
    cmd = "mkdir lock || exit 9; echo JOB >> order; sleep 0.05; rmdir lock"
    r = run("run.pl", ["--max-jobs-run", "1", "JOB=1:5", "log/m.JOB.log", "sh", "-c", cmd], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted((tmp_path / "order").read_text().split()) == ["1", "2", "3", "4", "5"]


def test_run_pl_ignores_scheduler_options(tmp_path, env):
    r = run("run.pl", ["--mem", "4G", "--gpu", "1", "--time", "1:00:00", "log/o.log", "true"], env, tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args, message", [
    (["JOB=3:1", "log/x.JOB.log", "true"], "bad job range"),
    (["JOB=1:2", "log/x.log", "true"], "does not contain 'JOB'"),
    (["JOB=1:2", "log/x.JOB.log"], "no command"),
    ([], "no log file"),
    (["--max-jobs-run", "zero", "log/x.log", "true"], "positive integer"),
    (["--mem"], "needs a value"),
])
def test_run_pl_usage_errors(tmp_path, env, args, message):
    r = run("run.pl", args, env, tmp_path)
    assert r.returncode == 1 and message in r.stderr, r.stderr


def test_run_pl_help(tmp_path, env):
    r = run("run.pl", ["--help"], env, tmp_path)
    assert r.returncode == 0 and "JOB=1:N" in r.stdout


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_run_pl_sigterm_kills_running_jobs(tmp_path, env):
    p = subprocess.Popen([os.path.join(REPO, "utils", "run.pl"), "JOB=1:2", "log/k.JOB.log",
                          "sh", "-c", "echo $$ > pid.JOB; exec sleep 30"],
                         env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 10
    while not all((tmp_path / f"pid.{j}").exists() and (tmp_path / f"pid.{j}").read_text().strip()
                  for j in (1, 2)):
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.02)
    pids = [int((tmp_path / f"pid.{j}").read_text()) for j in (1, 2)]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 128 + signal.SIGTERM
    assert "interrupted" in p.stderr.read()
    deadline = time.time() + 5
    while any(_alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.02)
    assert not any(_alive(pid) for pid in pids)


def test_utils_symlink_in_recipe_dir_and_default_interpreter(tmp_path, env):
    recipe = tmp_path / "egs" / "corpus" / "avse1"
    recipe.mkdir(parents=True)
    os.symlink(os.path.join(REPO, "utils"), recipe / "utils")
    e = {k: v for k, v in env.items() if k not in ("AVSE_PYTHON", "PYTHONPATH")}
    r = subprocess.run(["utils/run.pl", "JOB=1:2", "exp/log/l.JOB.log", "echo", "JOB"], env=e, cwd=recipe,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    check_log(recipe / "exp/log/l.2.log", "echo 2", "2")


# ---------------------------------------------------------------- queue.pl (SGE)

def test_queue_pl_array_job_and_option_mapping(tmp_path, env):
    r = run("queue.pl", ["--mem", "4G", "--num-threads", "2", "--max-jobs-run", "2", "JOB=5:7",
                         "exp/log/q.JOB.log", "echo", "task JOB", "|", "tr", "a-z", "A-Z"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    for j in (5, 6, 7):
        check_log(tmp_path / f"exp/log/q.{j}.log", f"echo 'task {j}' | tr a-z A-Z", f"TASK {j}", threads=2)
    (sub,) = submissions(tmp_path)
    argv = " ".join(sub["argv"])
    assert sub["prog"] == "qsub"
    assert "-l mem_free=4G,ram_free=4G" in argv and "-pe smp 2" in argv and "-tc 2" in argv
    assert "-t 1:3" in argv and "-N q" in argv
    assert sub["argv"][-1] == str(tmp_path / "exp/log/q/q.sh")
    assert not [n for n in os.listdir(tmp_path / "exp/log/q") if n.startswith("done.")]  # markers collected


def test_queue_pl_failed_task_is_named(tmp_path, env):
    r = run("queue.pl", ["JOB=1:3", "exp/log/f.JOB.log", "test", "JOB", "!=", "2"], env, tmp_path)
    assert r.returncode == 1
    assert "queue.pl: 1 / 3 failed, log is in exp/log/f.2.log" in r.stderr
    check_log(tmp_path / "exp/log/f.2.log", "test 2 != 2", "", code=1)


def test_queue_pl_task_killed_by_scheduler(tmp_path, env):
    env["FAKE_SCHED_KILL"] = "2"
    r = run("queue.pl", ["JOB=1:3", "exp/log/k.JOB.log", "echo", "JOB"], env, tmp_path)
    assert r.returncode == 1
    assert re.search(r"queue.pl: job 2 \(scheduler job \d+, task 2\) left the queue without finishing", r.stderr)
    assert "1 / 3 failed, log is in exp/log/k.2.log" in r.stderr
    check_log(tmp_path / "exp/log/k.3.log", "echo 3", "3")


def test_queue_pl_marker_written_after_job_left_queue(tmp_path, env):
    env.update(FAKE_SCHED_DROP_EARLY="1", AVSE_RUNNER_GRACE="1")
    r = run("queue.pl", ["JOB=1:2", "exp/log/d.JOB.log", "sleep", "0.1"], env, tmp_path)
    assert r.returncode == 0, r.stderr


def test_queue_pl_config_file_in_conf_dir(tmp_path, env):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/queue.conf").write_text(
        "# site config\ncommand qsub -q custom.q -cwd  # trailing comment\n"
        "option mem=* -l vf=$0\noption gpu=1 -l gpu=1 -q gpu.q\noption gpu=* -l gpu=$0 -q big.q\n"
        "option gpu=0\ndefault gpu=0\noption time=* -l h_rt=$0\ndefault time=1:00:00\n")
    r = run("queue.pl", ["--mem", "1G", "--gpu", "1", "log/c.log", "true"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    argv = " ".join(submissions(tmp_path)[0]["argv"])
    assert argv.startswith("-q custom.q -cwd ")
    assert "-l vf=1G" in argv and "-l gpu=1 -q gpu.q" in argv and "-l h_rt=1:00:00" in argv
    assert "-N" not in argv  # the site config has no name line
    r = run("queue.pl", ["--num-threads", "4", "log/c.log", "true"], env, tmp_path)
    assert r.returncode == 1 and "--num-threads 4" in r.stderr and "conf/queue.conf" in r.stderr


def test_queue_pl_config_errors_and_submit_failure(tmp_path, env):
    r = run("queue.pl", ["--config", "missing.conf", "log/c.log", "true"], env, tmp_path)
    assert r.returncode == 1 and "missing.conf" in r.stderr
    (tmp_path / "bad.conf").write_text("command qsub\nsomething else\n")
    r = run("queue.pl", ["--config", "bad.conf", "log/c.log", "true"], env, tmp_path)
    assert r.returncode == 1 and "bad.conf:2" in r.stderr
    r = run("queue.pl", ["--frobnicate", "1", "log/c.log", "true"], env, tmp_path)
    assert r.returncode == 1 and "--frobnicate 1" in r.stderr
    env["FAKE_SCHED_SUBMIT_FAIL"] = "1"
    r = run("queue.pl", ["log/c.log", "true"], env, tmp_path)
    assert r.returncode == 1 and "submission failed" in r.stderr and "refused" in r.stderr


def test_example_configs_parse(tmp_path, env):
    conf = os.path.join(REPO, "egs", "TEMPLATE", "avse1", "conf")
    for tool, name, expect in (("queue.pl", "queue.conf", "-l gpu=1 -q g.q"),
                               ("slurm.pl", "slurm.conf", "--gres=gpu:1")):
        r = run(tool, ["--config", os.path.join(conf, name), "--mem", "2G", "--gpu", "1",
                       "--num-threads", "2", "--time", "1:00:00", "log/e.log", "true"], env, tmp_path)
        assert r.returncode == 0, r.stderr
        assert expect in " ".join(submissions(tmp_path)[-1]["argv"])


# ---------------------------------------------------------------- slurm.pl

def test_slurm_pl_array_job_and_option_mapping(tmp_path, env):
    r = run("slurm.pl", ["--gpu", "1", "--mem", "2G", "--max-jobs-run", "2", "JOB=1:4", "exp/log/s.JOB.log",
                         "echo", "JOB"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    for j in range(1, 5):
        check_log(tmp_path / f"exp/log/s.{j}.log", f"echo {j}", str(j))
    (sub,) = submissions(tmp_path)
    assert sub["prog"] == "sbatch"
    assert {"--gres=gpu:1", "--parsable", "--array=1-4%2"} <= set(sub["argv"])
    assert "--mem 2G" in " ".join(sub["argv"])


@pytest.mark.parametrize("state", ["FAILED", "OUT_OF_MEMORY"])
def test_slurm_pl_task_killed_by_scheduler(tmp_path, env, state):
    env.update(FAKE_SCHED_KILL="3", FAKE_SCHED_KILL_STATE=state)
    r = run("slurm.pl", ["JOB=1:4", "exp/log/k.JOB.log", "echo", "JOB"], env, tmp_path)
    assert r.returncode == 1
    assert re.search(rf"job 3 \(scheduler job \d+, task 3\) left the queue without finishing: {state}", r.stderr)
    assert "slurm.pl: 1 / 4 failed, log is in exp/log/k.3.log" in r.stderr
    assert not (tmp_path / "exp/log/k.3.log").exists()


def test_slurm_pl_exact_config_value_and_failure(tmp_path, env):
    (tmp_path / "my.conf").write_text("command sbatch -p cpu\noption gpu=* --gres=gpu:$0\n"
                                      "option gpu=2 --gres=gpu:a100:2 -p gpu\n")
    r = run("slurm.pl", ["--config", "my.conf", "--gpu", "2", "JOB=1:2", "log/g.JOB.log", "exit", "JOB"],
            env, tmp_path)
    assert r.returncode == 1 and "2 / 2 failed, log is in log/g.{1,2}.log" in r.stderr
    argv = submissions(tmp_path)[0]["argv"]
    assert argv[:2] == ["-p", "cpu"] and "--gres=gpu:a100:2" in argv and "--job-name" not in argv


def test_slurm_pl_sigterm_cancels_the_array(tmp_path, env):
    p = subprocess.Popen([os.path.join(REPO, "utils", "slurm.pl"), "JOB=1:2", "log/c.JOB.log", "sleep", "30"],
                         env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    jobs = tmp_path / "sched" / "jobs"
    deadline = time.time() + 10
    while not (jobs.exists() and any((d / "task.2").exists() and (d / "task.2").read_text() == "RUNNING"
                                     for d in jobs.iterdir())):
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 128 + signal.SIGTERM
    (jobdir,) = jobs.iterdir()
    assert (jobdir / "task.1").read_text() == "CANCELLED" and (jobdir / "finished").exists()
