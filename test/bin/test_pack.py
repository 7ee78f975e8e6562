import json
import tarfile

import pytest

from avse.bin.pack import main, pack, sha256
from avse.errors import StageError


def test_pack_manifest_and_members(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "model.pt").write_bytes(b"weights")
    (exp / "config.yaml").write_text("lr: 1\n")
    extra = tmp_path / "enhance.yaml"
    extra.write_text("method: udiffse\n")
    out = tmp_path / "p.tar.gz"
    man = pack(str(exp), "model.pt", str(out), [str(extra)])
    with tarfile.open(out) as tar:
        names = sorted(tar.getnames())
        got = json.load(tar.extractfile("manifest.json"))
    assert names == ["extra/enhance.yaml", "manifest.json", "model/config.yaml", "model/model.pt"]
    assert got == man and got["files"]["model/model.pt"]["sha256"] == sha256(str(exp / "model.pt"))


def test_pack_missing_model(tmp_path):
    with pytest.raises(StageError, match="train the prior first"):
        pack(str(tmp_path), "model.pt", str(tmp_path / "x.tar.gz"))
    assert main(["--exp_dir", str(tmp_path), "--out", str(tmp_path / "x.tar.gz")]) == 1
