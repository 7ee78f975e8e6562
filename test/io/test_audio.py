import numpy as np
import pytest
import soundfile as sf

from avse.errors import InputError
from avse.io.audio import audio_info, load_audio, resample, save_audio


def test_load_valid_and_info(make_wav):
    x = np.sin(np.arange(16000) / 10).astype(np.float32) * 0.5
    p = make_wav("a.wav", x)
    y, fs = load_audio(p, 16000)
    assert fs == 16000 and y.shape == (16000,) and np.max(np.abs(y - x)) < 1e-4
    assert audio_info(p) == (16000, 1, 16000)


def test_rejections_name_the_item(make_wav, tmp_path):
    x = np.sin(np.arange(8000) / 10).astype(np.float32) * 0.5
    with pytest.raises(InputError, match=r"utt1.*not found"):
        load_audio(str(tmp_path / "missing.wav"), utt="utt1")
    with pytest.raises(InputError, match="sample rate 8000 Hz, expected 16000"):
        load_audio(make_wav("r.wav", x, fs=8000), 16000)
    with pytest.raises(InputError, match="2 channels"):
        load_audio(make_wav("st.wav", np.stack([x, x])), 16000)
    with pytest.raises(InputError, match="all zeros"):
        load_audio(make_wav("z.wav", np.zeros(100, np.float32)), 16000)
    with pytest.raises(InputError, match="empty"):
        load_audio(make_wav("e.wav", np.zeros(0, np.float32)), 16000)
    nan = tmp_path / "nan.wav"
    sf.write(str(nan), np.array([0.1, np.nan, 0.2], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN"):
        load_audio(str(nan))
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    with pytest.raises(InputError, match="unreadable"):
        load_audio(str(junk))


def test_resample_and_pipe(make_wav):
    x = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000).astype(np.float32) * 0.5
    p = make_wav("r.wav", x, fs=8000)
    y, fs = load_audio(p, 16000, resample_to_fs=True)
    assert fs == 16000 and abs(len(y) - 16000) <= 1
    y2, _ = load_audio(f"cat {p} |", 8000)
    assert np.allclose(y2, load_audio(p)[0])
    with pytest.raises(InputError, match="command failed"):
        load_audio("false |")
    assert resample(x, 8000, 8000) is x


def test_save_refuses_nan_and_clipping(tmp_path):
    with pytest.raises(InputError, match="NaN"):
        save_audio(str(tmp_path / "n.wav"), np.array([np.nan]), 16000)
    with pytest.raises(InputError, match="peak"):
        save_audio(str(tmp_path / "c.wav"), np.array([1.5, 0.0]), 16000)
    save_audio(str(tmp_path / "ok.wav"), np.array([0.5, -0.5], np.float32), 16000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.wav"]  # no temp leftovers
