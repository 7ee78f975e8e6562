import numpy as np
import pytest

from avse.errors import InputError
from avse.utils.registry import Registry
from avse.utils.seeding import stable_hash, utt_rng


def test_register_build_and_errors():
    r = Registry("thing")

    @r.register("lin")
    class Lin:
        def __init__(self, a, b=1):
            self.a, self.b = a, b

    obj = r.build("lin", a=2, b=3)
    assert (obj.a, obj.b) == (2, 3) and "lin" in r and r.names() == ["lin"]
    with pytest.raises(InputError, match="unknown thing 'nope'; choose from: lin"):
        r.build("nope")
    with pytest.raises(InputError, match="bad configuration"):
        r.build("lin", c=1)
    with pytest.raises(ValueError):
        r.register("lin")(lambda: None)


def test_seeding_is_stable_and_distinct():
    assert stable_hash("a", 1) == stable_hash("a", 1) != stable_hash("a", 2)
    a = utt_rng(0, "utt1").standard_normal(4)
    assert np.array_equal(a, utt_rng(0, "utt1").standard_normal(4))
    assert not np.array_equal(a, utt_rng(0, "utt2").standard_normal(4))
    assert not np.array_equal(a, utt_rng(1, "utt1").standard_normal(4))
