"""avse.train.dataset: crop shapes, determinism in (seed, step), short/empty data."""
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from avse.errors import InputError, StageError
from avse.train.dataset import (CropDataset, StepSampler, fixed_crops, make_loader, peak_normalize,
                                read_utterances)
from testutils import speechlike


def _dir(tmp_path, lens, name="d"):
    d = tmp_path / name
    (d / "wav").mkdir(parents=True)
    rows = []
    for i, n in enumerate(lens):
        p = d / "wav" / f"u{i}.wav"
        sf.write(str(p), speechlike(n / 16000, seed=i)[:n] * 0.3, 16000, subtype="FLOAT")
        rows.append(f"u{i} {p}\n")
    (d / "wav.scp").write_text("".join(rows))
    return str(d)


def test_crops_shape_normalisation_and_padding(tmp_path):
    d = _dir(tmp_path, [16000, 3000])
    utts = read_utterances(d, 16000, 510)
    ds = CropDataset(utts, {}, crop_frames=64)
    assert ds.crop_samples == 63 * 128
    x = ds[(0, 123)]
    assert x.shape == (256, 64) and x.dtype == torch.complex64
    w = ds.waveform(0, 123)
    assert w.shape == (63 * 128,) and np.max(np.abs(w)) <= 1.0 + 1e-6
    # the whole utterance is peak-normalised (the crop max is <= 1, the utterance max is 1)
    assert np.isclose(np.max(np.abs(peak_normalize(sf.read(utts[0][1])[0]))), 1.0)
    short = ds.waveform(1, 5)  # 3000 samples < 8064: zero-padded at the end
    assert short.shape == (8064,) and not np.any(short[3000:]) and np.isclose(np.max(np.abs(short)), 1.0)
    assert torch.equal(ds[(0, 123)], x) and not torch.equal(ds[(0, 124)], x)


def test_sampler_is_a_function_of_seed_and_step():
    a = StepSampler(10, 3, seed=1)
    it = iter(a)
    first = [next(it) for _ in range(3 * 7)]
    b = StepSampler(10, 3, seed=1, start_step=4)
    it = iter(b)
    assert [next(it) for _ in range(9)] == first[12:]
    # every utterance once per epoch
    assert sorted(a.draw(g)[0] for g in range(10)) == list(range(10))
    assert [a.draw(g)[0] for g in range(10)] != [StepSampler(10, 3, seed=2).draw(g)[0] for g in range(10)]
    # two ranks draw disjoint slices of each global step
    r0, r1 = StepSampler(10, 2, 1, rank=0, world_size=2), StepSampler(10, 2, 1, rank=1, world_size=2)
    assert r0.batch(0) + r1.batch(0) == [a.draw(g) for g in range(4)]


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_do_not_depend_on_workers(tmp_path, workers):
    d = _dir(tmp_path, [12000, 9000, 20000])
    ds = CropDataset(read_utterances(d, 16000, 510), {}, crop_frames=32)
    ref = [torch.stack([ds[it] for it in StepSampler(3, 2, 7).batch(s)]) for s in range(3)]
    it = iter(make_loader(ds, StepSampler(3, 2, 7), num_workers=workers))
    got = [next(it) for _ in range(3)]
    for r, g in zip(ref, got):
        assert g.shape == (2, 256, 32) and torch.equal(r, g)
    v1, v2 = fixed_crops(ds, 2, seed=0), fixed_crops(ds, 5, seed=0)
    assert v1.shape == (2, 256, 32) and v2.shape == (3, 256, 32) and torch.equal(v1, v2[:2])


def test_clear_errors_and_short_utterances(tmp_path, caplog):
    with pytest.raises(StageError, match="run stage 3"):
        read_utterances(str(tmp_path / "missing"), 16000, 510)
    e = tmp_path / "empty"
    e.mkdir()
    (e / "wav.scp").write_text("")
    with pytest.raises(InputError, match="empty wav.scp"):
        read_utterances(str(e), 16000, 510)
    d = _dir(tmp_path, [16000, 300, 200], name="short")
    with caplog.at_level(logging.WARNING):
        utts = read_utterances(d, 16000, 510)
    assert [k for k, _ in utts] == ["u0"] and "leaving out 2 of 3" in caplog.text
    with pytest.raises(InputError, match="no utterance"):
        read_utterances(_dir(tmp_path, [100], name="tooshort"), 16000, 510)
    with pytest.raises(InputError, match="sample rate"):
        read_utterances(d, 8000, 510)
