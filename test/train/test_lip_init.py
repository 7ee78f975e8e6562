"""lip_encoder_init: our lip-encoder files and released lip-reading ResNet-18 + MS-TCN
checkpoints (fakes with the real layout, test/fake_lipreading.py): format detection,
the load report, freezing, and the refusals with their hints."""
import logging

import pytest
import torch

from avse.errors import InputError
from avse.nets.lip_encoder import build_lip_encoder
from avse.train.lip_init import detect_format, init_lip_encoder
from avse.train.sync import save_lip_encoder
from fake_lipreading import lrw_state_dict, save_lrw_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread

SMALL = {"dim": 16, "width": 8, "tcn_hidden": 4, "tcn_kernels": [3, 5], "tcn_layers": 2}
SMALL_FILE = dict(width=8, hidden=4, kernels=(3, 5), layers=2)


def test_released_sizes_load_and_freeze(tmp_path, caplog):
    """A file of the released ResNet-18 + MS-TCN sizes (PReLU, ICASSP 2020 code with
    its two classifiers, saved from DataParallel) into the standard encoder."""
    sd = lrw_state_dict(act="prelu", legacy=True)
    path = str(tmp_path / "lrw_resnet18_mstcn.pth.tar")
    save_lrw_checkpoint(path, sd, data_parallel=True)
    enc = build_lip_encoder("resnet18_tcn", {"act": "prelu"})
    head = enc.head.weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="avse.test"):
        rep = init_lip_encoder(enc, "resnet18_tcn", path, freeze=True, log=logging.getLogger("avse.test"))
    assert rep["format"] == "lrw_resnet_tcn"
    assert len(rep["loaded"]) == len(sd) - 4 and sorted(rep["new"]) == ["head.bias", "head.weight", "norm.bias",
                                                                         "norm.weight"]
    assert sorted(rep["ignored"]) == sorted(f"{k} (word classifier)" for k in sd if "tcn_output" in k)
    own = enc.state_dict()
    for k, v in sd.items():
        if "tcn_output" not in k:
            assert torch.equal(own[enc.lrw_key(k)], v), k
    assert torch.equal(enc.head.weight, head)
    trainable = sorted(k for k, p in enc.named_parameters() if p.requires_grad)
    assert trainable == ["head.bias", "head.weight", "norm.bias", "norm.weight"]
    text = caplog.text
    assert "initialised from" in text and "lrw_resnet_tcn" in text and "word classifier" in text
    assert "still trained: head.weight" in text


def _refused(enc, name, path, match, fmt="auto"):
    with pytest.raises(InputError, match=match) as e:
        init_lip_encoder(enc, name, path, freeze=False, fmt=fmt)
    return str(e.value)


def test_refusals_name_what_does_not_fit(tmp_path):
    swish = str(tmp_path / "swish.pth")
    save_lrw_checkpoint(swish, lrw_state_dict(act="swish", **SMALL_FILE))
    prelu = str(tmp_path / "prelu.pth")
    save_lrw_checkpoint(prelu, lrw_state_dict(act="prelu", **SMALL_FILE))
    # the activation: PReLU weights in the file, or missing from it
    msg = _refused(build_lip_encoder("resnet18_tcn", SMALL), "resnet18_tcn", prelu, "not in this encoder")
    assert "set lip_encoder_conf.act: prelu" in msg and "frontend3D.2.weight -> front.2.weight" in msg
    msg = _refused(build_lip_encoder("resnet18_tcn", {**SMALL, "act": "prelu"}), "resnet18_tcn", swish,
                   "missing in the file")
    assert "act: swish (or relu)" in msg
    # other sizes: shapes listed
    msg = _refused(build_lip_encoder("resnet18_tcn", {**SMALL, "width": 4}), "resnet18_tcn", swish, "other shape")
    assert "frontend3D.0.weight: file (8, 1, 5, 7, 7), encoder (4, 1, 5, 7, 7)" in msg and "released:" in msg
    # another temporal network (a DC-TCN): refused, then the front-end alone with tcn_layers 0
    sd = {k: v for k, v in lrw_state_dict(**SMALL_FILE).items() if not k.startswith("tcn.")}
    sd["tcn.tcn_trunk.blocks.0.conv.weight"] = torch.zeros(4, 64, 3)
    dctcn = str(tmp_path / "dctcn.pth")
    save_lrw_checkpoint(dctcn, sd)
    msg = _refused(build_lip_encoder("resnet18_tcn", SMALL), "resnet18_tcn", dctcn, "missing in the file")
    assert "tcn_layers: 0" in msg
    front = build_lip_encoder("resnet18_tcn", {**SMALL, "tcn_layers": 0})
    rep = init_lip_encoder(front, "resnet18_tcn", dctcn, freeze=False)
    assert "tcn.tcn_trunk.blocks.0.conv.weight (no part of resnet18_tcn)" in rep["ignored"]
    # fewer TCN blocks than the file: the later ones are ignored
    one = build_lip_encoder("resnet18_tcn", {**SMALL, "tcn_layers": 1})
    rep = init_lip_encoder(one, "resnet18_tcn", swish, freeze=False, fmt="lrw_resnet_tcn")
    assert any("beyond tcn_layers 1" in i for i in rep["ignored"])
    # another encoder, another file, a wrong explicit format
    _refused(build_lip_encoder("resnet_tcn", {"dim": 8}), "resnet_tcn", swish, "loads into lip_encoder: resnet18_tcn")
    torch.save({"format": "avse.score_model", "state_dict": {"backbone.w": torch.zeros(2)}}, str(tmp_path / "m.pt"))
    _refused(build_lip_encoder("resnet18_tcn", SMALL), "resnet18_tcn", str(tmp_path / "m.pt"),
             "not a lip-encoder file .* nor a lip-reading")
    _refused(build_lip_encoder("resnet18_tcn", SMALL), "resnet18_tcn", swish, "not a lip-encoder file", fmt="avse")
    torch.save({"model_state_dict": {"encoder.w": torch.zeros(2)}}, str(tmp_path / "other.pth"))
    _refused(build_lip_encoder("resnet18_tcn", SMALL), "resnet18_tcn", str(tmp_path / "other.pth"),
             "no lip-reading weights", fmt="lrw_resnet_tcn")
    _refused(build_lip_encoder("resnet18_tcn", SMALL), "resnet18_tcn", str(tmp_path / "none.pth"), "not found")
    with pytest.raises(InputError, match="lip_encoder_init_format must be one of"):
        detect_format({}, "x", "onnx")


def test_our_lip_encoder_files_still_load_and_freeze_everything(tmp_path):
    torch.manual_seed(0)
    src = build_lip_encoder("resnet18_tcn", SMALL)
    path = str(tmp_path / "lip_encoder.pt")
    save_lip_encoder(path, "resnet18_tcn", src)
    dst = build_lip_encoder("resnet18_tcn", SMALL)
    rep = init_lip_encoder(dst, "resnet18_tcn", path, freeze=True)
    assert rep["format"] == "avse" and rep["new"] == []
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    assert not any(p.requires_grad for p in dst.parameters())
    assert init_lip_encoder(build_lip_encoder("resnet18_tcn", SMALL), "resnet18_tcn", None, freeze=False) is None
