"""WHAMR! (Maciejewski, Wichern, McQuinn, Le Roux, ICASSP 2020) inputs: WSJ0, the WHAM!
noise with its metadata, and the optional official room parameters.

Layouts parsed::

    $WSJ0/.../si_tr_s/<spk>/<utt>.wav   (and si_dt_05, si_et_05; sph converted to wav;
                                         found up to three folder levels below $WSJ0)
    $WHAM_NOISE/{tr,cv,tt}/<mixture>.wav                 (one noise file per mixture)
    $WHAM_NOISE/metadata/mix_param_meta_{tr,cv,tt}.csv   (columns parsed: utterance_id,
        noise_samples_beginning_16k, target_speaker1_snr_db)
    [reverb_params_{tr,cv,tt}.csv]  official WHAMR! rooms, columns: utterance_id,
        room_x, room_y, room_z, micL_x, micL_y, micR_x, micR_y, mic_z, s1_x, s1_y, s1_z,
        s2_x, s2_y, s2_z, T60 (metres, seconds)

A mixture name is wsj0-2mix's ``<utt1>_<gain1>_<utt2>_<gain2>`` (gains in dB, e.g.
``011a0101_1.1227_20ec0112_-1.1227``): the two WSJ0 utterances and their levels.
Training and validation mixtures (tr, cv) take their speech from ``si_tr_s``, test
mixtures (tt) from ``si_dt_05`` and ``si_et_05``.
"""
import csv
import os
import re
from typing import Dict, List, Optional

import numpy as np

from avse.errors import InputError
from avse.simulate.room import RoomSpec, room_config, sabine_absorption, sample_room

SPLITS = ("tr", "cv", "tt")
SPLIT_SUBSETS = {"tr": ("si_tr_s",), "cv": ("si_tr_s",), "tt": ("si_dt_05", "si_et_05")}
WSJ0_LAYOUT = "$WSJ0/[wsj0/]si_tr_s/<spk>/<utt>.wav (and si_dt_05, si_et_05), converted from sph"
WHAM_LAYOUT = ("$WHAM_NOISE/{tr,cv,tt}/<mixture>.wav and "
               "$WHAM_NOISE/metadata/mix_param_meta_{tr,cv,tt}.csv")
MIX_NAME = re.compile(r"^([0-9A-Za-z]{8})_(-?\d+(?:\.\d+)?)_([0-9A-Za-z]{8})_(-?\d+(?:\.\d+)?)$")
REVERB_COLUMNS = ("utterance_id", "room_x", "room_y", "room_z", "micL_x", "micL_y", "micR_x", "micR_y",
                  "mic_z", "s1_x", "s1_y", "s1_z", "s2_x", "s2_y", "s2_z", "T60")
# WHAMR!'s room distributions (REFERENCE section 8); the left microphone is the reference.
WHAMR_ROOM = {"length": [5.0, 10.0], "width": [5.0, 10.0], "height": [3.0, 4.0], "t60": [0.1, 1.0],
              "n_mics": 2, "mic_spacing": [0.15, 0.17], "mic_height": [0.9, 1.8], "array_jitter": 0.5,
              "src_dist": [0.66, 2.0], "src_height": [1.2, 2.0]}


def _stem(name: str) -> str:
    return name[:-4] if name.lower().endswith(".wav") else name


def index_wsj0(root: str, subsets=("si_tr_s", "si_dt_05", "si_et_05")) -> Dict[str, Dict[str, str]]:
    """``{subset: {utt: wav path}}`` for the subsets found under ``root``.

    Raises:
        InputError: ``root`` missing or without any wav of ``si_tr_s`` (with the layout).
    """
    if not os.path.isdir(root):
        raise InputError(f"WSJ0={root}: not a folder; expected layout {WSJ0_LAYOUT}")
    out: Dict[str, Dict[str, str]] = {s: {} for s in subsets}
    base_depth = root.rstrip(os.sep).count(os.sep)
    for d, dirs, _ in os.walk(root):
        dirs.sort()
        name = os.path.basename(d)
        if name in out:
            for spk in sorted(os.listdir(d)):
                sdir = os.path.join(d, spk)
                if os.path.isdir(sdir):
                    for f in sorted(os.listdir(sdir)):
                        if f.lower().endswith(".wav"):
                            out[name].setdefault(f[:-4].lower(), os.path.join(sdir, f))
            dirs[:] = []
        elif d.count(os.sep) - base_depth >= 3:
            dirs[:] = []
    if not out.get("si_tr_s"):
        raise InputError(f"WSJ0={root}: no si_tr_s/<spk>/<utt>.wav found; expected layout {WSJ0_LAYOUT} "
                         "(convert the .wv1 files first: local/sph2wav.sh)")
    return out


def parse_mix_name(name: str) -> tuple:
    """``(utt1, gain1_db, utt2, gain2_db)`` of a wsj0-2mix mixture name."""
    m = MIX_NAME.match(_stem(name))
    if not m:
        raise InputError(f"mixture {name!r}: not a wsj0-2mix name <utt1>_<gain1>_<utt2>_<gain2>")
    return m.group(1).lower(), float(m.group(2)), m.group(3).lower(), float(m.group(4))


def _read_csv(path: str, need: tuple, what: str) -> List[dict]:
    if not os.path.isfile(path):
        raise InputError(f"{path}: not found ({what})")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing columns {missing} ({what}); found {reader.fieldnames}")
        return list(reader)


def read_mix_params(wham_dir: str, split: str) -> Dict[str, dict]:
    """``{mixture: {"snr": dB of speaker 1 to the noise, "start": noise sample where
    the speech starts (16 kHz)}}`` from WHAM!'s ``mix_param_meta_<split>.csv``."""
    path = os.path.join(wham_dir, "metadata", f"mix_param_meta_{split}.csv")
    rows = _read_csv(path, ("utterance_id", "noise_samples_beginning_16k", "target_speaker1_snr_db"),
                     f"WHAM_NOISE metadata; expected layout {WHAM_LAYOUT}")
    out = {}
    for r in rows:
        try:
            out[_stem(r["utterance_id"])] = {"snr": float(r["target_speaker1_snr_db"]),
                                             "start": int(float(r["noise_samples_beginning_16k"]))}
        except ValueError as e:
            raise InputError(f"{path}: mixture {r['utterance_id']!r}: bad value ({e})") from e
    return out


def read_reverb_params(path: str) -> Dict[str, Dict[str, float]]:
    """Official WHAMR! room of every mixture: ``{mixture: {column: value}}``."""
    out = {}
    for r in _read_csv(path, REVERB_COLUMNS, "WHAMR! reverb parameters"):
        try:
            out[_stem(r["utterance_id"])] = {c: float(r[c]) for c in REVERB_COLUMNS[1:]}
        except ValueError as e:
            raise InputError(f"{path}: mixture {r['utterance_id']!r}: bad value ({e})") from e
    return out


def official_room(p: Dict[str, float], max_absorption: float = 0.99) -> RoomSpec:
    """The room of one ``reverb_params`` row, reference (left) microphone only;
    wall absorption and image order from Sabine's formula for its T60."""
    dims = [p["room_x"], p["room_y"], p["room_z"]]
    a, order = sabine_absorption(p["T60"], dims, max_absorption)
    return RoomSpec(dims=dims, mics=[[p["micL_x"], p["micL_y"], p["mic_z"]]],
                    sources=[[p["s1_x"], p["s1_y"], p["s1_z"]], [p["s2_x"], p["s2_y"], p["s2_z"]]],
                    t60=p["T60"], absorption=a, max_order=order)


def sampled_room(rng: np.random.Generator, overrides: Optional[dict] = None) -> RoomSpec:
    """A WHAMR!-like room (:data:`WHAMR_ROOM`, updated with ``overrides``) with two
    sources; the second microphone is dropped after placing the array (outputs are
    single-channel, from the left microphone)."""
    spec = sample_room(room_config({**WHAMR_ROOM, **(overrides or {})}), rng, n_sources=2)
    spec.mics = spec.mics[:1]
    return spec
