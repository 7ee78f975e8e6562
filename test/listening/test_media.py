import numpy as np
import pytest
import soundfile as sf

from avse.errors import InputError
from avse.listening import media


def test_levels():
    x = np.concatenate([0.01 * np.ones(1000), [0.5]])
    rms = media.level(x, "rms")
    assert np.max(np.abs(rms)) <= media.PEAK_MAX + 1e-12  # the peak limits the gain
    y = np.sin(np.linspace(0, 200, 16000)) * 0.001
    assert 20 * np.log10(np.sqrt(np.mean(media.level(y, "rms") ** 2))) == pytest.approx(media.RMS_DBFS)
    assert np.max(np.abs(media.level(y, "peak"))) == pytest.approx(10 ** (media.PEAK_DBFS / 20))
    assert np.max(media.level(np.array([2.0, 0.1]), "none")) == 1.0
    assert not media.level(np.zeros(10), "rms").any()
    with pytest.raises(InputError, match="normalize must be one of"):
        media.check_options("flac", "loud")
    with pytest.raises(InputError, match="audio format must be one of"):
        media.check_options("mp4", "rms")
    media.check_options("wav", "none")


def test_clip_and_spectrogram(tmp_path):
    fs = 16000
    x = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(fs) / fs)
    media.write_clip(str(tmp_path / "a.flac"), x, fs, "flac")
    info = sf.info(str(tmp_path / "a.flac"))
    assert (info.format, info.subtype, info.samplerate) == ("FLAC", "PCM_16", fs)
    s = media.stft_db(x, fs)
    assert s.shape == (257, 1 + (fs - 512) // 128)
    assert abs(np.argmax(s[:, 10]) - 1000 / (fs / 512)) <= 1  # the tone's bin
    assert media.stft_db(x[:100], fs).shape == (257, 1)
    vmin, vmax = media.colour_range([s, s - 10])
    assert vmax == s.max() and vmin == vmax - media.DYN_RANGE_DB
    media.write_spectrogram(str(tmp_path / "a.png"), s, vmin, vmax)
    import matplotlib.image

    assert matplotlib.image.imread(str(tmp_path / "a.png")).shape[:2] == media.IMAGE_PX[::-1]
