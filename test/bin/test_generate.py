"""avse.bin.generate: unconditional samples of the prior (wavs + spectrogram PNG)."""
import numpy as np
import soundfile as sf
import torch

from avse.bin.generate import main
from avse.bin.train import main as train_main
from avse.io.scp import read_table
from testutils import speechlike


def test_generate_writes_wavs_and_png(tmp_path, capfd):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    p = tmp_path / "c.wav"
    sf.write(str(p), speechlike(1.0, seed=2), 16000, subtype="FLOAT")
    (tmp_path / "wav.scp").write_text(f"c {p}\n")
    exp = tmp_path / "exp"
    assert train_main(["--train_dir", str(tmp_path), "--out_dir", str(exp), "--max_steps", "2",
                       "--model_conf", "{preset: tiny, nf: 8, ch_mult: [1, 2, 2]}", "--crop_frames", "16",
                       "--frontend_conf", "{n_fft: 126, hop: 32}", "--batch_size", "1", "--num_workers", "0",
                       "--progress", "false"]) == 0
    out = tmp_path / "gen"
    args = ["--model", str(exp / "model.pt"), "--out_dir", str(out), "--num", "2", "--seconds", "0.3",
            "--n_steps", "3", "--seed", "4"]
    assert main(args) == 0
    wavs = read_table(str(out / "wav.scp"))
    assert sorted(wavs) == ["sample_00", "sample_01"]
    ys = [sf.read(v)[0] for v in wavs.values()]
    assert all(len(y) == 4800 and np.all(np.isfinite(y)) and np.std(y) > 0 for y in ys)
    assert not np.array_equal(ys[0], ys[1])
    png = out / "spectrograms.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    assert "6 network calls" in capfd.readouterr().err  # 3 steps x (predictor + corrector)
    # the same seed gives the same samples
    assert main([*args[:3], str(tmp_path / "gen2"), *args[4:]]) == 0
    assert np.array_equal(sf.read(str(tmp_path / "gen2" / "sample_00.wav"))[0], ys[0])
    assert main([*args, "--seconds", "0.001"]) == 1
    torch.set_num_threads(threads)
