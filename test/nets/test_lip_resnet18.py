"""resnet18_tcn: the lip-reading ResNet-18 + MS-TCN front-end, its key map onto the
released checkpoint layout, and its numbers against a reference written from the
released description (test/fake_lipreading.py)."""
import pytest
import torch

from avse.errors import InputError
from avse.nets.lip_encoder import build_lip_encoder, encoder_input, is_encoder_input
from avse.train.lip_init import load_lrw_weights
from fake_lipreading import lrw_state_dict, reference_features

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread

SMALL = {"dim": 16, "width": 8, "tcn_hidden": 4, "tcn_kernels": [3, 5], "tcn_layers": 2}


def test_standard_sizes_map_onto_every_released_key():
    enc = build_lip_encoder("resnet18_tcn", {"act": "prelu"})
    own = enc.state_dict()
    sd = lrw_state_dict(act="prelu", legacy=True)
    targets = {}
    for k, v in sd.items():
        ours = enc.lrw_key(k)
        if "tcn_output" in k:
            assert ours == "", k
            continue
        assert ours in own and own[ours].shape == v.shape, (k, ours)
        targets[ours] = k
    assert sorted(targets) == sorted(k for k in own if not k.startswith(("head.", "norm.")))
    assert enc.lrw_key("trunk.0.0.weight") is None  # a ShuffleNet trunk is no part of it
    assert enc.head.in_features == 768 and enc.dim == 512 and encoder_input("resnet18_tcn") == "crops"


@pytest.mark.parametrize("act", ["swish", "prelu", "relu"])
def test_numbers_match_the_released_network(act):
    enc = build_lip_encoder("resnet18_tcn", {**SMALL, "act": act})
    sd = lrw_state_dict(act=act, width=8, hidden=4, kernels=(3, 5), layers=2, seed=1)
    report = load_lrw_weights(enc, "resnet18_tcn", {"model_state_dict": sd}, "fake.pth")
    assert sorted(report["new"]) == ["head.bias", "head.weight", "norm.bias", "norm.weight"]
    assert report["ignored"] == ["tcn.tcn_output.weight (word classifier)", "tcn.tcn_output.bias (word classifier)"]
    lips = torch.randint(0, 256, (2, 7, 88, 88), dtype=torch.uint8)
    enc.train()  # BatchNorm keeps the stored statistics even in training mode
    assert all(not m.training for m in enc.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    with torch.no_grad():
        got = enc.lipreading_features(lips)
    torch.testing.assert_close(got, reference_features(sd, lips, act, (3, 5), 2), rtol=1e-4, atol=1e-4)
    assert enc(lips).shape == (2, 7, 16)


def test_missing_frames_and_bad_inputs():
    torch.manual_seed(0)
    enc = build_lip_encoder("resnet18_tcn", SMALL).eval()
    lips = torch.randint(0, 256, (1, 6, 88, 88), dtype=torch.uint8)
    mask = torch.tensor([[True, True, False, True, True, True]])
    out = enc(lips, mask)
    assert torch.all(out[0, 2] == 0) and out[0, 1].abs().sum() > 0
    other = lips.clone()
    other[0, 2] = 255 - other[0, 2]  # a missing frame's pixels reach no output
    torch.testing.assert_close(enc(other, mask), out)
    assert is_encoder_input(enc, lips) and not is_encoder_input(enc, out)
    with pytest.raises(InputError, match=r"expected mouth crops \(B, T, 88, 88\)"):
        enc(torch.zeros(1, 6, 512))
    for bad, msg in (({"act": "gelu"}, "act must be one of"), ({"tcn_kernels": [4]}, "odd"),
                     ({"colour": 1}, "unknown option")):
        with pytest.raises(InputError, match=msg):
            build_lip_encoder("resnet18_tcn", bad)
    no_tcn = build_lip_encoder("resnet18_tcn", {**SMALL, "tcn_layers": 0})
    assert no_tcn.head.in_features == 64 and len(no_tcn.tcn) == 0
