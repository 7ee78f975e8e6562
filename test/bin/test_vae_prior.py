"""A VAE prior through the shared stages: avse.bin.train (model: vae / rvae), the model
file, avse.bin.enhance with vae_mcem / vae_vem, and the errors of mixing prior kinds."""
import numpy as np
import pytest
import soundfile as sf
import yaml

from avse.bin.enhance import main as enhance_main
from avse.bin.train import main as train_main
from avse.io.scp import read_table
from avse.nets.storage import load_model
from testutils import speechlike

pytestmark = pytest.mark.usefixtures("one_thread")
FE = "{n_fft: 128, hop: 32, window: sqrthann, alpha: 1.0, beta: 1.0, pad_multiple: 1}"


def _data(d, n=3):
    d.mkdir()
    rows = []
    for i in range(n):
        p = d / f"c{i}.wav"
        sf.write(str(p), speechlike(0.6, seed=i), 16000, subtype="FLOAT")
        rows.append(f"c{i} {p}\n")
    (d / "wav.scp").write_text("".join(rows))
    return str(d)


def _train(tmp, name, out, steps=4, extra=()):
    return train_main(["--train_dir", str(tmp / "clean"), "--valid_dir", str(tmp / "clean"), "--out_dir", str(out),
                       "--model", name, "--model_conf", "{latent: 4, hidden: 16}", "--frontend_conf", FE,
                       "--crop_frames", "16", "--batch_size", "2", "--max_steps", str(steps), "--valid_interval", "2",
                       "--ckpt_interval", "2", "--num_workers", "0", "--progress", "false", "--init_utts", "3",
                       *extra])


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vae")
    _data(tmp / "clean")
    assert _train(tmp, "vae", tmp / "exp") == 0
    return tmp


def test_training_exports_a_vae_model_and_resumes(vae, tmp_path):
    m = load_model(str(vae / "exp" / "model.pt"))
    assert m.kind == "vae" and m.sde is None and m.model.n_freq == 65 and m.meta["step"] == 4
    log = (vae / "exp" / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("step,train_loss,valid_loss") and len(log) > 2
    # the data-dependent initialisation put the decoder at the data's level
    assert abs(float(m.model.dec_out.bias.mean())) < 30
    # an interrupted run resumed to more steps continues from its checkpoint
    assert _train(vae, "vae", vae / "exp", steps=6, extra=["--resume", "true"]) == 0
    assert load_model(str(vae / "exp" / "model.pt")).meta["step"] == 6


def test_a_vae_needs_a_linear_front_end(vae, tmp_path, capfd):
    rc = train_main(["--train_dir", str(vae / "clean"), "--out_dir", str(tmp_path / "x"), "--model", "vae",
                     "--frontend_conf", "{n_fft: 128, hop: 32}", "--max_steps", "1", "--num_workers", "0"])
    assert rc == 1 and "linear STFT" in capfd.readouterr().err


def _noisy(d):
    d.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i, sec in enumerate([0.5, 0.9]):
        x = speechlike(sec, seed=10 + i) + 0.1 * rng.standard_normal(int(sec * 16000)).astype(np.float32)
        p = d / f"n{i}.wav"
        sf.write(str(p), 0.7 * x / np.max(np.abs(x)), 16000, subtype="FLOAT")
        rows.append(f"n{i} {p}\n")
    (d / "wav.scp").write_text("".join(rows))
    return str(d)


@pytest.mark.parametrize("method", ["vae_mcem", "vae_vem"])
def test_enhance_with_a_vae_prior(vae, tmp_path, method):
    data = _noisy(tmp_path / "noisy")
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"method": method, "method_conf": {"n_iter": 3, "rank": 2, "n_chains": 2,
                                                                      "n_final": 2}}))
    out = tmp_path / "out"
    args = ["--config", str(conf), "--model", str(vae / "exp" / "model.pt"), "--data_dir", data,
            "--out_dir", str(out), "--progress", "false"]
    assert enhance_main(args) == 0 and enhance_main(args + ["--merge", "true"]) == 0
    wavs = read_table(str(out / "wav.scp"))
    for k, p in wavs.items():
        y, fs = sf.read(p)
        x, _ = sf.read(read_table(data + "/wav.scp")[k])
        assert fs == 16000 and len(y) == len(x) and np.all(np.isfinite(y))
        assert 0 < np.sum(y ** 2) < np.sum(x ** 2)   # a Wiener filter removes energy


def test_prior_kind_mismatch_is_a_clear_error(vae, tmp_path, capfd):
    data = _noisy(tmp_path / "noisy")
    rc = enhance_main(["--method", "udiffse_plus", "--model", str(vae / "exp" / "model.pt"), "--data_dir", data,
                       "--out_dir", str(tmp_path / "o"), "--progress", "false"])
    assert rc == 1 and "needs a diffusion prior" in capfd.readouterr().err
    rc = enhance_main(["--method", "vae_mcem", "--model", str(vae / "exp" / "model.pt"), "--data_dir", data,
                       "--out_dir", str(tmp_path / "o2"), "--lip_guidance", "2", "--progress", "false"])
    assert rc == 1 and "VAE prior has none" in capfd.readouterr().err
