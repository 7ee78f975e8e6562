"""TCD-TIMIT (Harte and Gillen, IEEE Trans. Multimedia 2015), NTCD-TIMIT (Abdelaziz,
Interspeech 2017) and DEMAND (Thiemann et al., 2013): corpus layouts on disk.

Layouts parsed (``<...>`` are names, everything else literal)::

    $TCD_TIMIT/volunteers/<01M..59F>/Clips/straightcam/<utt>.mp4    (video + audio track)
    $TCD_TIMIT/volunteers/<spk>/audio/<utt>.wav                     (optional; also looked
        for next to the mp4 and in volunteers/<spk>/straightcam/)
    $NTCD_TIMIT/<Noise>/<SNR>/volunteers/<spk>/straightcam/<utt>.wav (Noise: Babble, Cafe,
        Car, LR, Street, White; SNR: -5, 0, ... 20, an optional "dB" suffix accepted)
    $NTCD_TIMIT/Clean/volunteers/<spk>/straightcam/<utt>.wav         (optional clean audio)
    $DEMAND/<TYPE>/ch01.wav   or  $DEMAND/<TYPE>_16k/<TYPE>/ch01.wav  (or _48k)

Utterance keys are ``<spk>_<utt>`` with the sentence id in lower case (``01M_sa1``);
NTCD-TIMIT keys add ``_<noise>_snr<+NN>`` (``09F_sx109_babble_snr-05``).

Speaker split of this research line (REFERENCE section 8): test 09F 24M 26M 27M 33F
40F 47M 49F 56M; validation 06M 17F 20M 35M 38F 42M 52M 59F; train the other
volunteers. The three lipspeakers are not used.
"""
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from avse.errors import InputError
from avse.io.scp import c_sorted
from avse.utils.seeding import utt_rng

TEST_SPEAKERS = ("09F", "24M", "26M", "27M", "33F", "40F", "47M", "49F", "56M")
VALID_SPEAKERS = ("06M", "17F", "20M", "35M", "38F", "42M", "52M", "59F")
SPEAKER_RE = re.compile(r"^\d\d[MF]$")
DEMAND_TYPES = ("TMETRO", "OOFFICE", "TBUS", "STRAFFIC", "SPSQUARE")
DEMAND_DESCRIPTIONS = {
    "TMETRO": "inside a metro train (DEMAND TMETRO)",
    "OOFFICE": "an office with people working (DEMAND OOFFICE)",
    "TBUS": "inside a public bus (DEMAND TBUS)",
    "STRAFFIC": "a busy street with cars passing (DEMAND STRAFFIC)",
    "SPSQUARE": "a public town square with pedestrians (DEMAND SPSQUARE)",
}
VIDEO_EXTS = (".mp4", ".MP4")

TCD_LAYOUT = ("$TCD_TIMIT/volunteers/<01M..59F>/Clips/straightcam/<utt>.mp4 "
              "[+ $TCD_TIMIT/volunteers/<spk>/audio/<utt>.wav]")
NTCD_LAYOUT = "$NTCD_TIMIT/<Babble|Cafe|Car|LR|Street|White>/<SNR>/volunteers/<spk>/straightcam/<utt>.wav"
DEMAND_LAYOUT = "$DEMAND/<TYPE>/ch01.wav or $DEMAND/<TYPE>_16k/<TYPE>/ch01.wav (TYPE: TMETRO OOFFICE TBUS STRAFFIC SPSQUARE)"


def speaker_split(spk: str) -> str:
    """``train``, ``valid`` or ``test`` for a volunteer id such as ``09F``."""
    if spk in TEST_SPEAKERS:
        return "test"
    if spk in VALID_SPEAKERS:
        return "valid"
    return "train"


@dataclass(frozen=True)
class Clip:
    """One sentence of one volunteer: ``video`` the camera clip, ``audio`` the
    corpus wav when there is one (else ``None``: the mp4's audio track is used)."""

    key: str
    speaker: str
    utt: str
    video: str
    audio: Optional[str]

    @property
    def split(self) -> str:
        return speaker_split(self.speaker)


def _files(d: str) -> Dict[str, str]:
    """Lower-case stem -> path of the files in ``d`` (empty when ``d`` is missing)."""
    if not os.path.isdir(d):
        return {}
    return {os.path.splitext(n)[0].lower(): os.path.join(d, n) for n in sorted(os.listdir(d))}


def scan_clips(root: str, camera: str = "straightcam", lips_dir: Optional[str] = None) -> List[Clip]:
    """Every volunteer clip of ``camera``, sorted by key.

    With ``lips_dir`` (pre-cropped 88x88 mouth videos laid out as
    ``<lips_dir>/<spk>/<utt>.mp4``) the clip's ``video`` is the mouth video and a
    clip without one is an error naming it.

    Raises:
        InputError: ``root/volunteers`` missing or without any clip (the message gives
            the expected layout), a missing mouth video.
    """
    vol = os.path.join(root, "volunteers")
    if not os.path.isdir(vol):
        raise InputError(f"TCD_TIMIT={root}: no volunteers/ folder; expected layout {TCD_LAYOUT}")
    clips = []
    for spk in sorted(os.listdir(vol)):
        if not SPEAKER_RE.match(spk):
            continue
        sdir = os.path.join(vol, spk)
        videos = {s: p for s, p in _files(os.path.join(sdir, "Clips", camera)).items() if p.endswith(VIDEO_EXTS)}
        wavs = {}
        for d in (os.path.join(sdir, "Clips", camera), os.path.join(sdir, camera), os.path.join(sdir, "audio")):
            wavs.update({s: p for s, p in _files(d).items() if p.lower().endswith(".wav")})
        for utt, video in videos.items():
            key = f"{spk}_{utt}"
            if lips_dir is not None:
                mouth = _files(os.path.join(lips_dir, spk)).get(utt)
                if mouth is None:
                    raise InputError(f"{key}: no mouth video {os.path.join(lips_dir, spk, utt)}.mp4 "
                                     f"(TCD_TIMIT_LIPS layout: <dir>/<spk>/<utt>.mp4)")
                video = mouth
            clips.append(Clip(key, spk, utt, video, wavs.get(utt)))
    if not clips:
        raise InputError(f"TCD_TIMIT={root}: no {camera} clips found; expected layout {TCD_LAYOUT}")
    return sorted(clips, key=lambda c: c.key.encode())


def _snr_value(name: str) -> Optional[float]:
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*(?:db)?", name.strip().lower())
    return float(m.group(1)) if m else None


def snr_suffix(snr: float) -> str:
    return f"snr{int(snr):+03d}" if float(snr).is_integer() else f"snr{snr:+05.1f}"


def scan_ntcd(root: str, keys: Dict[str, str], noises: Optional[List[str]] = None,
              snrs: Optional[List[float]] = None) -> Dict[str, dict]:
    """NTCD-TIMIT noisy versions of the utterances ``keys`` (``<spk>_<utt>`` -> clean audio).

    Returns ``{noisy key: {"wav": path, "clean": key, "noise": name, "snr": dB}}`` for
    every noise folder (``Clean`` excluded) and SNR folder (restricted to ``noises`` /
    ``snrs`` when given). The clean reference is NTCD-TIMIT's own ``Clean`` audio
    when present (``clean_path``), else the TCD-TIMIT audio.

    Raises:
        InputError: no noise folder with SNR sub-folders, or no noisy file of any
            wanted utterance (the message gives the layout).
    """
    if not os.path.isdir(root):
        raise InputError(f"NTCD_TIMIT={root}: not a folder; expected layout {NTCD_LAYOUT}")
    out: Dict[str, dict] = {}
    found_noise = False
    wanted = {n.lower() for n in noises} if noises else None
    for noise in sorted(os.listdir(root)):
        ndir = os.path.join(root, noise)
        if noise.lower() == "clean" or not os.path.isdir(ndir) or (wanted and noise.lower() not in wanted):
            continue
        for snr_dir in sorted(os.listdir(ndir)):
            snr = _snr_value(snr_dir)
            if snr is None or not os.path.isdir(os.path.join(ndir, snr_dir)):
                continue
            found_noise = True
            if snrs is not None and snr not in snrs:
                continue
            for key in keys:
                path = ntcd_path(os.path.join(ndir, snr_dir), key)
                if path is not None:
                    nkey = f"{key}_{noise.lower()}_{snr_suffix(snr)}"
                    out[nkey] = {"wav": path, "clean": key, "noise": noise.lower(), "snr": snr}
    if not found_noise:
        raise InputError(f"NTCD_TIMIT={root}: no <Noise>/<SNR>/ folders; expected layout {NTCD_LAYOUT}")
    if not out:
        raise InputError(f"NTCD_TIMIT={root}: no noisy version of any test utterance; expected layout {NTCD_LAYOUT}")
    return {k: out[k] for k in c_sorted(out)}


def ntcd_path(base: str, key: str) -> Optional[str]:
    """``<base>/volunteers/<spk>/straightcam/<utt>.wav`` (or without ``straightcam``)."""
    spk, utt = key.split("_", 1)
    for d in (os.path.join(base, "volunteers", spk, "straightcam"), os.path.join(base, "volunteers", spk)):
        p = _files(d).get(utt)
        if p is not None and p.lower().endswith(".wav"):
            return p
    return None


def find_demand(root: str, types=DEMAND_TYPES) -> Dict[str, str]:
    """Channel-1 recording of each DEMAND noise type: ``{TYPE: path}``.

    Raises:
        InputError: a type without ``ch01.wav`` in any accepted place (named).
    """
    if not os.path.isdir(root):
        raise InputError(f"DEMAND={root}: not a folder; expected layout {DEMAND_LAYOUT}")
    out = {}
    for t in types:
        cands = [os.path.join(root, t, "ch01.wav")] + \
                [os.path.join(root, f"{t}_{r}", t, "ch01.wav") for r in ("16k", "48k")]
        hit = next((p for p in cands if os.path.isfile(p)), None)
        if hit is None:
            raise InputError(f"DEMAND={root}: no ch01.wav for {t} (looked for {cands[0]}); "
                             f"expected layout {DEMAND_LAYOUT}")
        out[t] = hit
    return out


def pick_per_speaker(utt2spk: Dict[str, str], n: int, seed: int) -> List[str]:
    """``n`` utterances of every speaker (all when fewer), drawn with a random stream
    per speaker (``utt_rng(seed, "tcd_subset", spk)``): the same for any job split."""
    by_spk: Dict[str, List[str]] = {}
    for k in c_sorted(utt2spk):
        by_spk.setdefault(utt2spk[k], []).append(k)
    out = []
    for spk, keys in sorted(by_spk.items()):
        if len(keys) <= n:
            out += keys
        else:
            idx = utt_rng(seed, "tcd_subset", spk).choice(len(keys), size=n, replace=False)
            out += [keys[i] for i in np.sort(idx)]
    return c_sorted(out)
