"""The recordings to enhance and where their outputs go.

An input is one audio file, a folder (searched recursively for the extensions of
:data:`AUDIO_EXTS`, any case; hidden files and folders and the output folder itself are
skipped) or a Kaldi ``wav.scp`` (any file named ``*.scp``: ``<key> <path or cmd |>``).
Each recording gets

* ``key``: its path relative to the folder without extension (``spk1/take2``), its file
  name without extension, or its ``wav.scp`` key: it names the recording in logs and
  seeds its random draws;
* ``out``: the output's path relative to the output folder, ``<key>.wav``: the folder's
  tree mirrored, every output a WAV file.

Two recordings with the same output (``a.flac`` and ``a.wav``) are both kept; the
caller reports the second as failed (:func:`duplicate_outputs`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List

from avse.errors import InputError
from avse.io.scp import read_table

#: extensions read as audio (formats libsndfile reads)
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
              ".caf", ".w64", ".rf64", ".sph", ".nist")


@dataclass(frozen=True)
class Recording:
    key: str
    path: str
    out: str


def is_audio(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTS and not name.startswith(".")


def _walk(folder: str, skip: str | None) -> List[Recording]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")
                   and (skip is None or os.path.realpath(os.path.join(root, d)) != skip)]
        for name in files:
            if is_audio(name):
                rel = os.path.relpath(os.path.join(root, name), folder)
                key = os.path.splitext(rel)[0].replace(os.sep, "/")
                found.append(Recording(key, os.path.join(root, name), key + ".wav"))
    if not found:
        raise InputError(f"{folder}: no audio files in this folder or below (extensions {', '.join(AUDIO_EXTS)})")
    return sorted(found, key=lambda r: r.path)


def _scp(path: str) -> List[Recording]:
    table = read_table(path)
    if not table:
        raise InputError(f"{path}: empty wav.scp, nothing to enhance")
    out = []
    for key, value in table.items():
        parts = key.split("/")
        if key.startswith("/") or ".." in parts or "" in parts:
            raise InputError(f"{path}: key {key!r} cannot name an output inside the output folder")
        out.append(Recording(key, value, key + ".wav"))
    return out


def find_recordings(inp: str, out_dir: str | None = None) -> List[Recording]:
    """The recordings of ``inp`` (module docstring), sorted by path for a folder and in
    file order for a ``wav.scp``; ``out_dir`` is skipped when it lies inside a folder."""
    if os.path.isdir(inp):
        return _walk(inp, os.path.realpath(out_dir) if out_dir else None)
    if not os.path.isfile(inp):
        raise InputError(f"{inp}: no such file or folder")
    if inp.endswith(".scp"):
        return _scp(inp)
    stem = os.path.splitext(os.path.basename(inp))[0]
    return [Recording(stem, inp, stem + ".wav")]


def duplicate_outputs(recs: List[Recording]) -> Dict[Recording, Recording]:
    """``{recording: the earlier one with the same output}`` for every later duplicate."""
    first: Dict[str, Recording] = {}
    dup = {}
    for r in recs:
        if r.out in first:
            dup[r] = first[r.out]
        else:
            first[r.out] = r
    return dup
