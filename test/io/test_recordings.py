"""avse.io.recordings: which recordings a file, folder or wav.scp names, and their outputs."""
import pytest

from avse.errors import InputError
from avse.io.recordings import Recording, duplicate_outputs, find_recordings


def _touch(p):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return str(p)


def test_a_folder_is_searched_recursively_and_mirrored(tmp_path):
    d = tmp_path / "in"
    for name in ("b.wav", "a/x.FLAC", "a/deep/y.ogg", "notes.txt", ".hidden.wav", ".cache/z.wav", "out/old.wav"):
        _touch(d / name)
    recs = find_recordings(str(d), out_dir=str(d / "out"))
    assert [(r.key, r.out) for r in recs] == [("a/deep/y", "a/deep/y.wav"), ("a/x", "a/x.wav"), ("b", "b.wav")]
    assert recs[1].path == str(d / "a" / "x.FLAC")
    # the output folder is only skipped when it is the one given
    assert "out/old" in [r.key for r in find_recordings(str(d))]


def test_a_file_a_wav_scp_and_errors(tmp_path):
    f = _touch(tmp_path / "take 1.wav")
    assert find_recordings(f) == [Recording("take 1", f, "take 1.wav")]
    scp = tmp_path / "wav.scp"
    scp.write_text(f"u1 {f}\nspk/u2 sox x.wav -t wav - |\n")
    assert [(r.key, r.path, r.out) for r in find_recordings(str(scp))] == [
        ("u1", f, "u1.wav"), ("spk/u2", "sox x.wav -t wav - |", "spk/u2.wav")]
    scp.write_text("../up x.wav\n")
    with pytest.raises(InputError, match="cannot name an output inside"):
        find_recordings(str(scp))
    (tmp_path / "empty").mkdir()
    _touch(tmp_path / "empty" / "readme.txt")
    with pytest.raises(InputError, match=r"empty: no audio files in this folder or below"):
        find_recordings(str(tmp_path / "empty"))
    with pytest.raises(InputError, match="nothere: no such file or folder"):
        find_recordings(str(tmp_path / "nothere"))


def test_recordings_with_one_output_are_reported(tmp_path):
    for name in ("a.flac", "a.wav", "b.wav"):
        _touch(tmp_path / name)
    recs = find_recordings(str(tmp_path))
    assert [r.out for r in recs] == ["a.wav", "a.wav", "b.wav"]
    assert duplicate_outputs(recs) == {recs[1]: recs[0]}
