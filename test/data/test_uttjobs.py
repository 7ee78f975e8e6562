import argparse
import json
import os

import pytest

from avse.data.uttjobs import Stage, check_config, merge_jobs, read_rows, run_job, run_stage, select_keys
from avse.errors import InputError, StageError
from avse.io.scp import read_table
from avse.utils.fileio import is_done, mark_done


def _fn(calls):
    def fn(key):
        calls.append(key)
        return {"utt2len": str(len(key)), "utt2spk": key[:4]}
    return fn


def test_resume_skips_done_and_drops_truncated_record(tmp_path):
    out = str(tmp_path / "out")
    calls = []
    run_job(["aaaa1", "bbbb22"], _fn(calls), out, job=1, progress=False)
    rows = os.path.join(out, ".jobs", "rows.1.jsonl")
    with open(rows, "a") as f:
        f.write('{"key": "cccc3", "ro')  # killed mid-write
    calls.clear()
    run_job(["aaaa1", "bbbb22", "cccc3"], _fn(calls), out, job=1, progress=False)
    assert calls == ["cccc3"]
    assert list(read_rows(rows)) == ["aaaa1", "bbbb22", "cccc3"]


def test_merge_two_jobs_and_done(tmp_path):
    out = str(tmp_path / "out")
    run_job(["bbbb2"], _fn([]), out, job=2, progress=False)
    run_job(["aaaa1"], _fn([]), out, job=1, progress=False)
    tables = merge_jobs(out, extra={"noise_desc": {"white": "flat spectrum"}}, validate=False)
    assert read_table(os.path.join(out, "utt2len")) == {"aaaa1": "5", "bbbb2": "5"}
    assert open(os.path.join(out, "spk2utt")).read() == "aaaa aaaa1\nbbbb bbbb2\n"
    assert tables["utt2spk"]["aaaa1"] == "aaaa"
    assert is_done(out)
    calls = []
    run_job(["zzzz"], _fn(calls), out, job=3, progress=False)  # done dir: nothing runs
    assert calls == []


def test_errors_fail_or_skip(tmp_path):
    def fn(key):
        if key == "bad":
            raise InputError("audio is all zeros")
        return {"x": "1"}
    with pytest.raises(InputError, match="utterance 'bad': audio is all zeros"):
        run_job(["ok", "bad"], fn, str(tmp_path / "a"), progress=False)
    out = str(tmp_path / "b")
    run_job(["ok", "bad"], fn, out, on_error="skip", progress=False)
    merge_jobs(out, validate=False)
    assert read_table(os.path.join(out, "skipped"))["bad"] == "audio is all zeros"
    with pytest.raises(StageError, match="no job results"):
        merge_jobs(str(tmp_path / "c"))


def test_select_keys_and_config_guard(tmp_path):
    kf = tmp_path / "keys"
    kf.write_text("b\na\n")
    assert select_keys(["a", "b", "c"], str(kf)) == ["b", "a"]
    kf.write_text("q\n")
    with pytest.raises(InputError, match="not in the input"):
        select_keys(["a"], str(kf))
    out = str(tmp_path / "o")
    check_config(out, {"snrs": [0, 5]})
    check_config(out, {"snrs": [0, 5]})
    with pytest.raises(StageError, match=r"differs in \['snrs'\]"):
        check_config(out, {"snrs": [0]})
    assert json.load(open(os.path.join(out, ".jobs", "config.json"))) == {"snrs": [0, 5]}


class _Cmd:
    """A command for run_stage: records what the skeleton calls."""

    def __init__(self, keys=("aaaa1", "bbbb2", "cccc3")):
        self.keys, self.calls, self.setups, self.works, self.merges = keys, [], 0, 0, 0

    def setup(self):
        self.setups += 1

        def work():
            self.works += 1
            return _fn(self.calls)
        return Stage(keys=self.keys, work=work, merge=self.merge)

    def merge(self):
        self.merges += 1


def _args(**kw):
    base = {"key_file": None, "job": 1, "on_error": "fail", "progress": False, "merge": False}
    return argparse.Namespace(**{**base, **kw})


def test_run_stage_done_dir_returns_at_once(tmp_path):
    out = str(tmp_path / "out")
    mark_done(out)
    cmd = _Cmd()
    run_stage(_args(), out, cmd.setup, {"a": 1})
    run_stage(_args(merge=True), out, cmd.setup, {"a": 1})
    assert (cmd.setups, cmd.calls, cmd.merges) == (0, [], 0)
    assert not os.path.exists(os.path.join(out, ".jobs"))
    run_stage(_args(merge=True), out, cmd.setup, {"a": 1}, merge_when_done=True)  # outputs elsewhere
    assert (cmd.setups, cmd.merges) == (1, 1)


def test_run_stage_jobs_resume_then_merge(tmp_path):
    out = str(tmp_path / "out")
    kf = tmp_path / "keys.1"
    kf.write_text("bbbb2\n")
    cmd = _Cmd()
    run_stage(_args(key_file=str(kf)), out, cmd.setup, {"a": 1})
    assert cmd.calls == ["bbbb2"] and cmd.merges == 0
    run_stage(_args(), out, cmd.setup, {"a": 1})  # all keys: the done one is skipped
    assert cmd.calls == ["bbbb2", "aaaa1", "cccc3"]
    assert list(read_rows(os.path.join(out, ".jobs", "rows.1.jsonl"))) == ["bbbb2", "aaaa1", "cccc3"]
    works = cmd.works
    run_stage(_args(merge=True), out, cmd.setup, {"a": 1})
    assert cmd.merges == 1 and cmd.works == works  # the merge builds no per-utterance function


def test_run_stage_refuses_another_config_after_reading_inputs(tmp_path):
    out = str(tmp_path / "out")
    cmd = _Cmd()
    run_stage(_args(), out, cmd.setup, {"snrs": [0, 5]})
    with pytest.raises(StageError, match=r"differs in \['snrs'\]"):
        run_stage(_args(), out, cmd.setup, {"snrs": [0]})
    assert cmd.setups == 2 and len(cmd.calls) == 3

    def bad_input():
        raise InputError("no such corpus")
    fresh = str(tmp_path / "fresh")
    with pytest.raises(InputError):
        run_stage(_args(), fresh, bad_input, {"snrs": [0]})
    assert not os.path.exists(os.path.join(fresh, ".jobs", "config.json"))  # nothing recorded


def test_run_stage_list_keys_and_special_commands(tmp_path):
    listed = tmp_path / "keys.all"
    cmd = _Cmd(keys={"tr/b": "tr", "tr/a": "tr"})
    run_stage(_args(list_keys=str(listed)), str(tmp_path / "o"), cmd.setup, {})
    assert listed.read_text() == "tr/a tr\ntr/b tr\n" and cmd.calls == []
    run_stage(_args(list_keys=str(listed)), None, _Cmd(keys=["z", "y"]).setup, {})  # no output dir needed
    assert listed.read_text() == "y\nz\n"
    # a command without --merge merges right after its one job
    cmd = _Cmd()
    out = str(tmp_path / "one")
    run_stage(argparse.Namespace(progress=False), out, cmd.setup, {})
    assert len(cmd.calls) == 3 and cmd.merges == 1
    # a job that runs itself (no keys)
    shards = []
    run_stage(_args(job=2), str(tmp_path / "s"), lambda: Stage(merge=cmd.merge, job=lambda: shards.append(2)), {})
    assert shards == [2]
