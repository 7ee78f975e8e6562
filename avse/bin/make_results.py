"""Write ``RESULTS.md`` from every ``*/score/meta.json`` under an experiment directory.

    python -m avse.bin.make_results --exp_dir EXP --out RESULTS.md [--title T] [--recipe NAME]

One table per test set (one row per system, ``noisy`` first; SI-SDR, PESQ-WB, PESQ-NB
MOS-LQO, raw PESQ-NB, ESTOI, and RTF/NFE when known), per-condition tables (SNR, noise
type, T60), and a header with the environment (date, git commit, versions, hardware).
Every number comes from the score directories written by ``avse.bin.score``; the file
is written atomically.
"""
import argparse
import logging
import sys

from avse.errors import AvseError
from avse.scoring.results import make_results
from avse.utils.config import parse_args
from avse.utils.log import setup_logging

log = logging.getLogger("avse.make_results")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", required=True, help="searched (any depth) for score/meta.json")
    p.add_argument("--out", required=True, help="Markdown file to write")
    p.add_argument("--title", default="Results")
    p.add_argument("--recipe", default=None, help="recipe name for the header (e.g. mini_av/avse1)")
    p.add_argument("--verbose", type=int, default=1)
    return p


def main(argv=None) -> int:
    args = parse_args(get_parser(), argv)
    setup_logging(args.verbose)
    try:
        sets = make_results(args.exp_dir, args.out, title=args.title, recipe=args.recipe)
    except AvseError as e:
        log.error("%s", e)
        return 1
    for ts, systems in sets.items():
        log.info("%s: %s", ts, ", ".join(systems))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
