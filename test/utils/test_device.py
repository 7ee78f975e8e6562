"""--device names: clear errors for unknown names and for CUDA without CUDA."""
import pytest
import torch

from avse.errors import InputError
from avse.utils.device import resolve_device


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="not a device name"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda:0")
