import numpy as np
import pytest

from avse.corpus.synthetic.noise import NOISE_DESCRIPTIONS
from avse.corpus.synthetic.noise_text import corpus, describe
from avse.corpus.synthetic.scenes import SCENES, image_to_tensor_layout, render_scene
from avse.errors import InputError
from avse.utils.seeding import utt_rng


def test_every_noise_type_has_a_scene_and_descriptions():
    assert set(SCENES) == set(NOISE_DESCRIPTIONS)
    for t in NOISE_DESCRIPTIONS:
        s = describe(t, utt_rng(0, t))
        assert isinstance(s, str) and len(s) > 5


@pytest.mark.parametrize("t", sorted(NOISE_DESCRIPTIONS))
def test_scene_is_reproducible_and_varies(t):
    a = render_scene(t, utt_rng(0, t, 1))
    b = render_scene(t, utt_rng(0, t, 1))
    c = render_scene(t, utt_rng(0, t, 2))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    x = image_to_tensor_layout(a)
    assert x.shape == (3, 64, 64) and x.min() >= -1 and x.max() <= 1


def test_scene_errors():
    with pytest.raises(InputError, match="known|choose"):
        render_scene("jackhammer", utt_rng(0))
    with pytest.raises(InputError, match="16"):
        render_scene("rain", utt_rng(0), size=8)


def test_describe_level_room_and_corpus():
    s = describe("cafe", utt_rng(0, 1), level="loud", room="car", p_original=0.0)
    assert "  " not in s
    with pytest.raises(InputError, match="level"):
        describe("cafe", utt_rng(0), level="deafening")
    sents = corpus(["rain", "fan"], n_per_type=5)
    assert len(sents) == 2 + 10 and NOISE_DESCRIPTIONS["rain"] in sents
