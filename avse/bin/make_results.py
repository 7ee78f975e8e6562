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

from avse.utils.cli import run_main
from avse.scoring.results import make_results

log = logging.getLogger("avse.make_results")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", required=True, help="searched (any depth) for score/meta.json")
    p.add_argument("--out", required=True, help="Markdown file to write")
    p.add_argument("--title", default="Results")
    p.add_argument("--recipe", default=None, help="recipe name for the header (e.g. mini_av/avse1)")
    p.add_argument("--verbose", type=int, default=1)
    return p


def run(args) -> None:
    sets = make_results(args.exp_dir, args.out, title=args.title, recipe=args.recipe)
    for ts, systems in sets.items():
        log.info("%s: %s", ts, ", ".join(systems))
    log.info("wrote %s", args.out)


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
