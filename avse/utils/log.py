"""Logging set-up shared by every command (Kaldi-like prefix: time, level, module)."""
import logging
import sys


def setup_logging(verbose: int = 1) -> logging.Logger:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        force=True,
    )
    return logging.getLogger("avse")
