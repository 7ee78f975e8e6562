"""The torch device of a command's ``--device`` option."""
import torch

from avse.errors import InputError


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)`` (``cpu``, ``cuda``, ``cuda:N``); :class:`InputError` for a
    CUDA device on a machine without CUDA or a name torch does not know."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"--device {name!r}: not a device name ({e}); use cpu, cuda or cuda:N") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available; use --device cpu")
    return dev
