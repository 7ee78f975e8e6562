import os

import pytest

from avse.utils.fileio import atomic_open, atomic_path, clear_done, is_done, mark_done


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(str(p)) as f:
            f.write("half")
            raise RuntimeError("killed")
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    with atomic_open(str(p)) as f:
        f.write("new")
    assert p.read_text() == "new"


def test_atomic_path_keeps_extension(tmp_path):
    with atomic_path(str(tmp_path / "x.tar.gz")) as tmp:
        assert tmp.endswith(".tar.gz")
        open(tmp, "w").close()
    assert (tmp_path / "x.tar.gz").exists()


def test_done_marker(tmp_path):
    assert not is_done(str(tmp_path))
    mark_done(str(tmp_path), {"n": 1})
    assert is_done(str(tmp_path))
    clear_done(str(tmp_path))
    assert not is_done(str(tmp_path))


def test_atomic_files_get_the_usual_mode(tmp_path):
    old = os.umask(0o022)
    try:
        import importlib
        import avse.utils.fileio as fio
        importlib.reload(fio)
        with fio.atomic_open(str(tmp_path / "m.txt")) as f:
            f.write("x")
        assert (os.stat(tmp_path / "m.txt").st_mode & 0o777) == 0o644
    finally:
        os.umask(old)
