"""External merge sort of ``<key>\\t<payload>`` lines in byte order (``LC_ALL=C``), with
memory bounded by the chunk size whatever the number of lines (for tables of millions
of utterances, e.g. AVSpeech).

Lines are read from an iterator, sorted in chunks of ``chunk_lines`` in memory,
written as sorted runs to a temporary folder, then merged with a heap (one line per
run in memory). Lines with a key seen before are dropped (the first one in input
order wins) and counted.
"""
import heapq
import os
import tempfile
from typing import Iterable, Iterator, List, Tuple


def _key(line: str) -> bytes:
    return line.split("\t", 1)[0].encode("utf-8")


def _write_run(lines: List[str], tmp_dir: str, n: int) -> str:
    lines.sort(key=_key)  # stable: equal keys keep their input order
    path = os.path.join(tmp_dir, f"run{n:05d}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return path


def _read(path: str, run: int) -> Iterator[Tuple[bytes, int, str]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield _key(line), run, line


def _sorted(lines: Iterable[str], chunk_lines: int, tmp_dir: str | None, dup: List[int]) -> Iterator[str]:
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix="extsort.") as td:
        runs, buf = [], []
        for line in lines:
            buf.append(line if line.endswith("\n") else line + "\n")
            if len(buf) >= chunk_lines:
                runs.append(_write_run(buf, td, len(runs)))
                buf = []
        if buf or not runs:
            runs.append(_write_run(buf, td, len(runs)))
        last = None
        # ties on the key go to the earlier run: the first occurrence in input order wins
        for key, _, line in heapq.merge(*(_read(p, i) for i, p in enumerate(runs)), key=lambda t: (t[0], t[1])):
            if key == last:
                dup[0] += 1
                continue
            last = key
            yield line


def sort_file(lines: Iterable[str], out_path: str, chunk_lines: int = 500_000,
              tmp_dir: str | None = None) -> Tuple[int, int]:
    """Write the sorted unique lines to ``out_path`` (atomically: a temporary name,
    then a rename). Returns ``(lines written, duplicates dropped)``."""
    dup = [0]
    n = 0
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for line in _sorted(lines, chunk_lines, tmp_dir or os.path.dirname(os.path.abspath(out_path)), dup):
            f.write(line)
            n += 1
    os.replace(tmp, out_path)
    return n, dup[0]
