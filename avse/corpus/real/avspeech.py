"""AVSpeech (Ephrat et al., "Looking to Listen at the Cocktail Party", SIGGRAPH 2018):
the CSVs and the user's folder of downloaded clips, read as streams.

CSV (no header, one clip per line): ``ytid,start_s,end_s,x,y`` with ``x, y`` the
normalised face centre (in [0, 1]) at the start of the segment. Clip files are
named by the official convention ``<ytid>_<start %010.6f>-<end %010.6f>.mp4`` in one
folder (``$AVSPEECH_CLIPS/<name>.mp4``); the clip name is the utterance key and the
YouTube id its speaker (the id is 11 characters long, so keys of one video are
contiguous in byte order).

Nothing here holds more than one CSV line in memory: :func:`iter_csv` streams,
:func:`in_shard` assigns line ``i`` to job ``i mod nj + 1``, :func:`is_valid`
decides the held-out validation videos by a hash of the YouTube id.
"""
import csv
import math
import os
from dataclasses import dataclass
from typing import Iterator, Optional

from avse.utils.seeding import stable_hash

CSV_LAYOUT = "avspeech_{train,test}.csv: lines ytid,start_s,end_s,x,y (no header)"
CLIPS_LAYOUT = "<AVSPEECH_CLIPS>/<ytid>_<start %010.6f>-<end %010.6f>.mp4"


def clip_name(ytid: str, start: float, end: float) -> str:
    """The official clip file stem, e.g. ``abc_012.345000-020.000000``."""
    return f"{ytid}_{start:010.6f}-{end:010.6f}"


@dataclass(frozen=True)
class Row:
    """One CSV line: ``index`` (0-based, over data lines), the clip ``name`` (key),
    times in seconds and the normalised face centre; ``error`` is set (and the rest
    may be empty) for a malformed line."""

    index: int
    ytid: str
    start: float
    end: float
    x: float
    y: float
    name: str
    error: Optional[str] = None


def _parse(i: int, fields: list) -> Row:
    if len(fields) < 5:
        return Row(i, "", 0, 0, 0, 0, f"line{i + 1}", f"line {i + 1}: expected 5 fields, got {len(fields)}")
    ytid = fields[0].strip()
    try:
        start, end, x, y = (float(v) for v in fields[1:5])
    except ValueError:
        return Row(i, ytid, 0, 0, 0, 0, f"line{i + 1}", f"line {i + 1}: non-numeric time or face centre {fields[1:5]}")
    if not ytid or any(c.isspace() for c in ytid) or not all(map(math.isfinite, (start, end, x, y))) \
            or end <= start or start < 0:
        return Row(i, ytid, start, end, x, y, f"line{i + 1}", f"line {i + 1}: invalid clip {fields[:5]}")
    x, y = min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)
    return Row(i, ytid, start, end, x, y, clip_name(ytid, start, end))


def iter_csv(path: str) -> Iterator[Row]:
    """Stream the rows of one AVSpeech CSV (blank lines are not counted)."""
    with open(path, newline="", encoding="utf-8") as f:
        i = 0
        for fields in csv.reader(f):
            if not fields or not "".join(fields).strip():
                continue
            yield _parse(i, fields)
            i += 1


def in_shard(index: int, job: int, nj: int) -> bool:
    """Line ``index`` belongs to job ``job`` (1-based) of ``nj``."""
    return index % nj == job - 1


def is_valid(ytid: str, valid_permille: int) -> bool:
    """A training video held out for validation (about ``valid_permille`` per mille of
    the videos, all clips of a video together)."""
    return stable_hash("avspeech_valid", ytid) % 1000 < valid_permille


def clip_path(clips_dir: str, name: str) -> str:
    return os.path.join(clips_dir, f"{name}.mp4")


def wav_path(out_dir: str, name: str) -> str:
    """``out_dir/wav/<000-999>/<name>.wav``: a thousand folders, not millions of files in one."""
    return os.path.join(out_dir, "wav", f"{stable_hash('avspeech_dir', name) % 1000:03d}", f"{name}.wav")
