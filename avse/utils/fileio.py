"""Atomic file writing and completion markers.

Every output of a stage is written to a temporary name in the destination folder and
renamed into place only when complete (``os.replace`` is atomic on POSIX), so a file
that exists is a finished file, and a killed job never leaves a half-written output
that a re-run would take as complete.
"""
import contextlib
import hashlib
import json
import os
import tempfile
from typing import Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)

@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    The temporary name keeps the extension of ``path`` so that writers which infer
    the format from the suffix (soundfile, numpy, PyAV) still work.
    """
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    if stem.endswith(".tar"):  # keep double extensions like .tar.gz
        stem, ext = stem[:-4], ".tar" + ext
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{ext}", dir=d)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs):
    """Open a temporary file for writing; it replaces ``path`` when the block ends cleanly."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


def write_json(path: str, obj, indent: int = 2) -> None:
    """Write ``obj`` as JSON atomically."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=indent, sort_keys=True)
        f.write("\n")


def write_csv_rows(path: str, rows: list) -> None:
    """Write dicts as CSV atomically: one column per key found in any row (sorted), blank
    where a row lacks it (e.g. training logs whose phases log different values)."""
    import csv

    with atomic_open(path, newline="") as f:
        w = csv.DictWriter(f, sorted({k for r in rows for k in r}))
        w.writeheader()
        w.writerows(rows)


DONE_NAME = ".done"


def mark_done(directory: str, info: dict | None = None) -> None:
    """Mark ``directory`` as a complete stage output (written last, atomically)."""
    write_json(os.path.join(directory, DONE_NAME), info or {})


def is_done(directory: str) -> bool:
    """True when ``directory`` was completed by :func:`mark_done`."""
    return os.path.isfile(os.path.join(directory, DONE_NAME))


def clear_done(directory: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(directory, DONE_NAME))


def source_signature(path: str) -> str:
    """The absolute path, size and modification time (ns) of a file; a Kaldi pipe command
    (``... |``) or a missing file: the string itself. Equal signatures: an unchanged input."""
    if path.rstrip().endswith("|") or not os.path.exists(path):
        return path
    st = os.stat(path)
    return f"{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}"


def digest(text: str) -> str:
    """SHA-1 hex digest of ``text`` (UTF-8)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def done_info(directory: str) -> dict | None:
    """The JSON written by :func:`mark_done` in ``directory``, ``None`` if not done (or unreadable)."""
    try:
        with open(os.path.join(directory, DONE_NAME), encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None
