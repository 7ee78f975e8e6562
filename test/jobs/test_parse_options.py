"""utils/parse_options.sh, sourced by a real bash script under ``set -euo pipefail``."""
import subprocess

import pytest

from testutils import REPO

SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
nj=4
use_gpu=false
foo_bar=default
empty=
help_message="Usage: demo.sh [options] <dir>
  --nj N   number of jobs"
. {repo}/utils/parse_options.sh
echo "nj=$nj"
echo "use_gpu=$use_gpu"
echo "foo_bar=$foo_bar"
echo "empty=$empty"
echo "n=$#"
printf 'arg=[%s]\\n' "$@"
"""


@pytest.fixture
def demo(tmp_path):
    path = tmp_path / "demo.sh"
    path.write_text(SCRIPT.format(repo=REPO))
    path.chmod(0o755)

    def run(*args):
        r = subprocess.run([str(path), *args], capture_output=True, text=True, cwd=tmp_path)
        values = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line and not line.startswith("arg="))
        rest = [line[5:-1] for line in r.stdout.splitlines() if line.startswith("arg=[")]
        return r, values, rest[:int(values.get("n", 0))]

    return run


def test_sets_variables_dash_and_underscore(demo):
    r, v, rest = demo("--nj", "8", "--foo-bar", "x y", "--use_gpu", "true", "--empty", "set")
    assert r.returncode == 0, r.stderr
    assert (v["nj"], v["foo_bar"], v["use_gpu"], v["empty"]) == ("8", "x y", "true", "set")
    assert rest == []
    r, v, _ = demo("--foo_bar", "z", "--nj=3")
    assert (v["foo_bar"], v["nj"]) == ("z", "3")


def test_no_arguments_keeps_defaults(demo):
    r, v, rest = demo()
    assert r.returncode == 0, r.stderr
    assert (v["nj"], v["use_gpu"], v["foo_bar"], v["n"]) == ("4", "false", "default", "0")


def test_unknown_option_is_an_error_naming_it(demo):
    r, v, _ = demo("--nj", "2", "--no-such-opt", "1", "dir")
    assert r.returncode == 1
    assert "--no-such-opt" in r.stderr and "no_such_opt" in r.stderr
    assert "nj" not in v  # the script stopped


def test_boolean_variables_only_take_true_or_false(demo):
    r, _, _ = demo("--use-gpu", "yes")
    assert r.returncode == 1 and "true" in r.stderr and "yes" in r.stderr
    r, v, _ = demo("--use-gpu", "false")
    assert r.returncode == 0 and v["use_gpu"] == "false"
    # a non-boolean variable may be set to anything, true included
    r, v, _ = demo("--nj", "true")
    assert r.returncode == 0 and v["nj"] == "true"


def test_missing_value_is_an_error(demo):
    r, _, _ = demo("--nj")
    assert r.returncode == 1 and "--nj" in r.stderr


def test_positional_arguments_stop_parsing(demo):
    r, v, rest = demo("--nj", "2", "data/train", "--foo-bar", "ignored", "")
    assert r.returncode == 0, r.stderr
    assert v["nj"] == "2" and v["foo_bar"] == "default"
    assert rest == ["data/train", "--foo-bar", "ignored", ""]
    r, v, rest = demo("--nj", "5", "--", "--nj", "x")
    assert v["nj"] == "5" and rest == ["--nj", "x"]
    r, v, rest = demo("-x", "a")  # a single-dash word is positional
    assert r.returncode == 0 and rest == ["-x", "a"]


def test_config_is_sourced_first_and_command_line_wins(demo, tmp_path):
    (tmp_path / "a.conf").write_text("# comment\nnj=10\nfoo_bar=from_a\nuse_gpu=true\n")
    (tmp_path / "b.conf").write_text("foo_bar=from_b\n")
    # --config after --nj: the command line still wins
    r, v, rest = demo("--nj", "3", "--config", "a.conf", "dir")
    assert r.returncode == 0, r.stderr
    assert (v["nj"], v["foo_bar"], v["use_gpu"]) == ("3", "from_a", "true")
    assert rest == ["dir"]
    # several configs, sourced in order
    r, v, _ = demo("--config", "a.conf", "--config=b.conf")
    assert (v["nj"], v["foo_bar"]) == ("10", "from_b")


def test_missing_config_is_an_error(demo):
    r, _, _ = demo("--config", "nope.conf")
    assert r.returncode == 1 and "nope.conf" in r.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_message_and_exits_0(demo, flag):
    r, v, _ = demo("--nj", "2", flag, "dir")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: demo.sh [options] <dir>\n  --nj N")
    assert "nj" not in v


def test_help_without_message(tmp_path):
    p = tmp_path / "nohelp.sh"
    p.write_text(f"#!/usr/bin/env bash\nset -euo pipefail\nx=1\n. {REPO}/utils/parse_options.sh\necho ran\n")
    p.chmod(0o755)
    r = subprocess.run([str(p), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "ran" not in r.stdout
