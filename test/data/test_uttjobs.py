import json
import os

import pytest

from avse.data.uttjobs import check_config, merge_jobs, read_rows, run_job, select_keys
from avse.errors import InputError, StageError
from avse.io.scp import read_table
from avse.utils.fileio import is_done


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
