import json
import tarfile

import pytest

from avse.bin.pack import main, pack, sha256
from avse.errors import InputError, StageError
from avse.version import __version__
from testutils import tiny_model


def test_pack_manifest_and_members(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    tiny_model(str(exp / "model.pt"))
    (exp / "config.yaml").write_text("lr: 1\n")
    confs = []
    for name, text in [("enhance_udiffse.yaml", "method: udiffse\n"),
                       ("enhance_plus.yaml", "# tuned\nmethod: udiffse_plus\nmethod_conf: {lam: 2.5}\n")]:
        (tmp_path / name).write_text(text)
        confs.append(str(tmp_path / name))
    (tmp_path / "RESULTS.md").write_text("| a |\n")
    out = tmp_path / "p.tar.gz"
    man = pack(str(exp), "model.pt", str(out), [str(tmp_path / "RESULTS.md")], confs, "plus")
    with tarfile.open(out) as tar:
        names = sorted(tar.getnames())
        got = json.load(tar.extractfile("manifest.json"))
        assert tar.extractfile("enhance/plus.yaml").read().startswith(b"# tuned")
    assert names == ["enhance/plus.yaml", "enhance/udiffse.yaml", "extra/RESULTS.md", "manifest.json",
                     "model/config.yaml", "model/model.pt"]
    assert got == man and got["files"]["model/model.pt"]["sha256"] == sha256(str(exp / "model.pt"))
    assert got["avse_version"] == __version__ and got["git_commit"]
    m = got["model"]
    assert (m["file"], m["kind"], m["audio_visual"], m["fs"]) == ("model/model.pt", "score", False, 16000)
    assert m["frontend"]["n_fft"] == 126 and m["model"]["model"] == "ncsnpp" and m["sde"]["name"] == "ouve"
    e = got["enhance"]
    assert e["default"] == "plus" and sorted(e["configs"]) == ["plus", "udiffse"]
    assert e["configs"]["plus"]["method_conf"]["lam"] == 2.5 and e["configs"]["udiffse"]["method_conf"]["n_em"] == 5
    # default: the first config
    assert pack(str(exp), "model.pt", str(tmp_path / "q.tar.gz"), enhance_config=confs)["enhance"]["default"] == "udiffse"


def test_pack_errors(tmp_path, capfd):
    with pytest.raises(StageError, match="train the prior first"):
        pack(str(tmp_path), "model.pt", str(tmp_path / "x.tar.gz"))
    assert main(["--exp_dir", str(tmp_path), "--out", str(tmp_path / "x.tar.gz")]) == 1
    tiny_model(str(tmp_path / "model.pt"))
    bad = tmp_path / "enhance_bad.yaml"
    bad.write_text("method: udiffse\nmethod_conf: {n_stepz: 3}\n")
    assert main(["--exp_dir", str(tmp_path), "--enhance_config", str(bad), "--out", str(tmp_path / "x.tar.gz")]) == 1
    assert "enhance_bad.yaml: method udiffse" in capfd.readouterr().err
    bad.write_text("method: vae_vem\n")
    with pytest.raises(InputError, match="enhance_bad.yaml: method vae_vem needs a vae prior"):
        pack(str(tmp_path), "model.pt", str(tmp_path / "x.tar.gz"), enhance_config=[str(bad)])
    bad.write_text("method: udiffse\n")
    with pytest.raises(InputError, match="--default_enhance 'other' is none of"):
        pack(str(tmp_path), "model.pt", str(tmp_path / "x.tar.gz"), enhance_config=[str(bad)], default_enhance="other")
    assert not (tmp_path / "x.tar.gz").exists()
