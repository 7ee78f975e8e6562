"""The common frame of every ``python -m avse.bin.<verb>`` command.

``main(argv)`` of a command is ``run_main(get_parser(), body, argv, log)``: parse the
YAML config and flags (:func:`avse.utils.config.parse_args`), set up logging from
``--verbose``, run ``body(args)`` and turn a toolkit error (:class:`avse.errors.AvseError`:
bad input, a stage started too early, ...) into one logged line and exit status 1,
without a traceback. Other exceptions are bugs and keep their traceback.
"""
import argparse
import logging
from typing import Callable, List, Optional

from avse.errors import AvseError
from avse.utils.config import parse_args
from avse.utils.log import setup_logging


def run_main(parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], Optional[int]],
             argv: Optional[List[str]] = None, log: Optional[logging.Logger] = None,
             yaml_config: bool = True) -> int:
    """Run a command; returns its exit status (``body``'s return value if it is an int,
    else 0).

    ``yaml_config=False`` parses with plain argparse (commands without ``--config``).
    """
    log = log or logging.getLogger("avse")
    try:
        args = parse_args(parser, argv) if yaml_config else parser.parse_args(argv)
        setup_logging(getattr(args, "verbose", 1))
        status = body(args)
    except AvseError as e:
        log.error("%s", e)
        return 1
    return status if isinstance(status, int) and not isinstance(status, bool) else 0
