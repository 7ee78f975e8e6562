"""Exceptions with messages that name the offending item (file, line, utterance)."""


class AvseError(Exception):
    """Base class of the toolkit's own errors."""


class InputError(AvseError, ValueError):
    """Bad user input: a file, an scp line, an utterance or a config value.

    The message always names the item (path, ``file:line`` or utterance id) so that
    the user can find it in a large data directory.
    """


class StageError(AvseError, RuntimeError):
    """A stage was started before its inputs exist, or its outputs are inconsistent."""


class SkipUtterance(AvseError):
    """An utterance that a documented rule leaves out (e.g. audio and video lengths
    disagree beyond the tolerated limit); it is listed with the reason, never fatal."""
