"""The utils/*.sh data-dir helpers, run as a user runs them."""
import os
import subprocess

from testutils import REPO


def _run(args, env, **kw):
    return subprocess.run(args, env=env, capture_output=True, text=True, **kw)


def test_split_scp_kaldi_interface(tmp_path, venv_env):
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"s{i // 3}_u{i} /x/{i}.wav\n" for i in range(9)))
    u2s = tmp_path / "utt2spk"
    u2s.write_text("".join(f"s{i // 3}_u{i} s{i // 3}\n" for i in range(9)))
    r = _run([f"{REPO}/utils/split_scp.pl", "--utt2spk", str(u2s), "--num_splits", "3", str(scp),
              str(tmp_path / "keys.JOB")], venv_env)
    assert r.returncode == 0, r.stderr
    parts = [open(tmp_path / f"keys.{j}").read().split("\n")[:-1] for j in (1, 2, 3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    assert all(len({l.split("_")[0] for l in p}) == 1 for p in parts)  # one speaker per part
    r = _run([f"{REPO}/utils/split_scp.pl", str(scp)] + [str(tmp_path / f"o{i}") for i in range(10)], venv_env)
    assert r.returncode == 1 and "use fewer jobs" in r.stderr


def test_validate_fix_spk2utt(tiny_data_dir, venv_env):
    u = f"{REPO}/utils"
    assert _run([f"{u}/validate_data_dir.sh", tiny_data_dir], venv_env).returncode == 0
    os.unlink(os.path.join(tiny_data_dir, "spk2utt"))
    r = _run([f"{u}/validate_data_dir.sh", tiny_data_dir], venv_env)
    assert r.returncode == 1 and "missing spk2utt" in r.stderr
    r = _run([f"{u}/utt2spk_to_spk2utt.pl", os.path.join(tiny_data_dir, "utt2spk")], venv_env)
    assert r.stdout == "spkA spkA_001 spkA_002\nspkB spkB_001 spkB_002\n"
    assert _run([f"{u}/fix_data_dir.sh", tiny_data_dir], venv_env).returncode == 0
    assert _run([f"{u}/validate_data_dir.sh", "--audio", "--fs", "16000", tiny_data_dir], venv_env).returncode == 0
