"""avse.nets.packed: loading a packed archive, an experiment dir or a model file."""
import io
import json
import os
import tarfile
import tempfile

import pytest

from avse.bin.pack import pack
from avse.errors import InputError
from avse.nets.packed import config_name, open_model
from testutils import tiny_model


@pytest.fixture
def exp(tmp_path):
    d = tmp_path / "exp"
    d.mkdir()
    tiny_model(str(d / "model.pt"))
    (d / "config.yaml").write_text("lr: 1\n")
    c = tmp_path / "enhance_fast.yaml"
    c.write_text("method: udiffse_plus\nmethod_conf: {n_steps: 4}\n")
    return d, str(c)


def test_config_names():
    assert config_name("conf/enhance_udiffse_plus.yaml") == "udiffse_plus"
    assert config_name("my.yml") == "my" and config_name("enhance_") == "enhance_"


def test_open_model_from_archive_dir_and_file(exp, tmp_path, monkeypatch):
    d, conf = exp
    out = str(tmp_path / "p.tar.gz")
    pack(str(d), "model.pt", out, enhance_config=[conf])
    monkeypatch.chdir(tmp_path / "exp")   # nothing relative to the recipe is needed
    os.rename(conf, conf + ".gone")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    b = open_model(out)
    assert b.model.fs == 16000 and b.model.kind == "score" and b.default == "fast"
    assert b.enhance["fast"]["method_conf"]["n_steps"] == 4 and b.info["model"]["frontend"]["hop"] == 32
    assert os.listdir(tmp_path / "tmp") == []   # the unpacked model is removed
    assert open_model(str(d)).enhance == {} and open_model(str(d / "model.pt")).default is None


def test_damaged_archives_and_missing_models_are_named(exp, tmp_path):
    d, _ = exp
    out = str(tmp_path / "p.tar.gz")
    pack(str(d), "model.pt", out)
    with tarfile.open(out) as tar:
        man = json.load(tar.extractfile("manifest.json"))
    man["files"]["model/model.pt"]["sha256"] = "0" * 64
    bad = str(tmp_path / "bad.tar.gz")
    with tarfile.open(out) as src, tarfile.open(bad, "w:gz") as dst:
        for m in src.getmembers():
            data = json.dumps(man).encode() if m.name == "manifest.json" else src.extractfile(m).read()
            m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    with pytest.raises(InputError, match=r"bad.tar.gz: model/model.pt does not match its SHA-256"):
        open_model(bad)
    trunc = tmp_path / "trunc.tar.gz"
    trunc.write_bytes(open(out, "rb").read()[:300])
    with pytest.raises(InputError, match="trunc.tar.gz"):
        open_model(str(trunc))
    with pytest.raises(InputError, match="needs model.pt"):
        open_model(str(tmp_path))
    with pytest.raises(InputError, match="nothing.pt: model not found"):
        open_model(str(tmp_path / "nothing.pt"))
