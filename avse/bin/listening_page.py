"""Stage 8: a static listening page of every scored system, per test set.

    python -m avse.bin.listening_page --exp_dir EXP --out_dir EXP/listening [--max_utts 6] \\
        [--test_sets SET ...] [--audio_format flac|wav] [--normalize rms|peak|none] [--title T]

The systems are those of ``RESULTS.md``: every ``score/`` directory under ``--exp_dir``
(:mod:`avse.scoring.entries`). Per test set, ``OUT/<test_set>/index.html`` shows the
systems x metrics table of means (the numbers of ``RESULTS.md``) and, for ``--max_utts``
utterances chosen deterministically and spread over the SNRs of the data dir's
``utt2snr`` (:mod:`avse.listening.select`; 0: every scored utterance), a player and a
spectrogram of the noisy input, the clean reference and every system's output, with
the utterance's scores. ``OUT/index.html`` links the test sets. The folder is
self-contained (relative links, audio copied in, no network resources).

Clips are 16-bit FLAC (``--audio_format wav``: WAV), each at the same loudness
(``--normalize rms``: -26 dBFS RMS; ``peak``; ``none``: as scored). A system output that
is missing or unreadable is named in the log, listed on its test set's page and shown
in place of its player; the page is still built (exit status 0).

Resumable: files whose sources and settings did not change are kept, so a second run
on an unchanged experiment writes nothing (:mod:`avse.listening.build`).
"""
import argparse
import logging
import os
import sys

from avse.listening.build import build_pages
from avse.listening.media import AUDIO_FORMATS, NORMALIZE
from avse.utils.cli import run_main
from avse.utils.config import to_dict

log = logging.getLogger("avse.listening_page")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", required=True, help="searched (any depth) for score/meta.json")
    p.add_argument("--out_dir", required=True, help="page folder to write (e.g. EXP/listening)")
    p.add_argument("--max_utts", type=int, default=6,
                   help="utterances per test set, spread over the SNRs (0: every scored utterance)")
    p.add_argument("--test_sets", nargs="+", default=None, help="test sets to show (default: all scored)")
    p.add_argument("--audio_format", default="flac", choices=sorted(AUDIO_FORMATS))
    p.add_argument("--normalize", default="rms", choices=list(NORMALIZE),
                   help="clip levels: rms (-26 dBFS), peak (-1 dBFS) or none")
    p.add_argument("--title", default="Listening page")
    p.add_argument("--verbose", type=int, default=1)
    return p


def run(args) -> None:
    out = build_pages(args.exp_dir, args.out_dir, max_utts=args.max_utts, test_sets=args.test_sets,
                      audio_format=args.audio_format, normalize=args.normalize, title=args.title,
                      config=to_dict(args))
    for s in out["sets"]:
        log.info("%s: noisy input and %d systems, %d utterances%s", s["name"], s["n_systems"], s["n_utts"],
                 f", {s['n_missing']} missing outputs" if s["n_missing"] else "")
    c = out["counts"]
    log.info("wrote %d clips and %d spectrograms (%d up to date, %d missing) to %s",
             c["clips"], c["images"], c["up_to_date"], c["missing"], os.path.join(args.out_dir, "index.html"))


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
