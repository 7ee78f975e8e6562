"""avse.io.stream: streamed resampling, chunked reading and the streamed writer."""
import numpy as np
import pytest
import soundfile as sf

from avse.errors import InputError
from avse.io.audio import resample
from avse.io.stream import AudioReader, AudioWriter, StreamResampler, chunk_plan
from testutils import speechlike


@pytest.mark.parametrize("fs_in,fs_out", [(8000, 16000), (44100, 16000), (16000, 8000), (22050, 16000),
                                          (16000, 16000)])
def test_stream_resampler_equals_whole_signal_resampling(fs_in, fs_out):
    rng = np.random.default_rng(0)
    for n in (1, 333, 20011):
        x = rng.standard_normal(n).astype(np.float32)
        rs, out, i = StreamResampler(fs_in, fs_out), [], 0
        while i < n:
            step = int(rng.integers(1, 2500))
            out.append(rs.push(x[i:i + step]))
            i += step
        out.append(rs.flush())
        y, ref = np.concatenate(out), resample(x, fs_in, fs_out)
        assert len(y) == len(ref) == rs.total(n)
        np.testing.assert_allclose(y, ref, atol=1e-5)


def test_reader_mixes_down_resamples_and_chunks(tmp_path):
    x = speechlike(2.3, fs=8000, seed=1)
    p = str(tmp_path / "st.flac")
    sf.write(p, np.stack([x, -0.5 * x], 1), 8000)
    r = AudioReader(p, 16000)
    assert (r.fs_in, r.channels, r.frames, r.downmixed) == (8000, 2, len(x), True)
    whole = np.concatenate(list(r.blocks()))
    ref = resample(sf.read(p, dtype="float32")[0].mean(1), 8000, 16000)
    np.testing.assert_allclose(whole, ref, atol=1e-5)
    chunks = list(r.chunks(16000, 4000))
    assert [(s, s + len(c)) for s, c, _ in chunks] == chunk_plan(len(whole), 16000, 4000)
    assert [last for *_, last in chunks] == [False, False, True]
    for s, c, _ in chunks:
        np.testing.assert_array_equal(c, whole[s:s + len(c)])
    # a file of at most one chunk is one chunk
    assert [(s, len(c), last) for s, c, last in r.chunks(len(whole), 100)] == [(0, len(whole), True)]


def test_reader_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    empty = str(tmp_path / "empty.wav")
    sf.write(empty, np.zeros(0, np.float32), 16000)
    nan = str(tmp_path / "nan.wav")
    y = np.zeros(100000, np.float32)
    y[70000] = np.nan
    sf.write(nan, y, 16000, subtype="FLOAT")
    for path, what in [(str(tmp_path / "none.wav"), "not found"), (str(bad), "unreadable audio"),
                       (empty, "empty audio")]:
        with pytest.raises(InputError, match=what) as e:
            AudioReader(path, 16000)
        assert path in str(e.value)
    with pytest.raises(InputError, match=r"nan.wav: NaN or infinite samples \(first at 4.375 s\)"):
        list(AudioReader(nan, 16000).blocks())


def test_writer_resamples_to_the_given_length_and_leaves_nothing_on_error(tmp_path):
    x = speechlike(1.0, seed=2)
    out = str(tmp_path / "sub" / "o.wav")
    with AudioWriter(out, 16000, 8000, 8003) as w:   # 3 samples more than the signal: zero padded
        for i in range(0, len(x), 3000):
            w.write(x[i:i + 3000])
    y, fs = sf.read(out, dtype="float32")
    assert fs == 8000 and len(y) == 8003 and sf.info(out).subtype == "FLOAT"
    np.testing.assert_allclose(y[:8000], resample(x, 16000, 8000), atol=1e-5)
    assert not np.any(y[8000:])
    with pytest.raises(InputError, match="NaN"):
        with AudioWriter(str(tmp_path / "n.wav"), 16000, 16000, 10) as w:
            w.write(np.full(10, np.nan, np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
