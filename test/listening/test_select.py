import random

import pytest

from avse.errors import InputError
from avse.listening.select import deal, select_utts, spread


def _data_dir(tmp_path, snrs):
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    (d / "utt2snr").write_text("".join(f"{k} {v}\n" for k, v in sorted(snrs.items())))
    return str(d)


def test_spread_and_deal():
    assert spread(list(range(10)), 2) == [2, 7]
    assert spread(list(range(10)), 1) == [5]
    assert spread(list(range(10)), 3, ends=True) == [0, 5, 9]
    assert spread(list(range(10)), 1, ends=True) == [5]
    assert spread([1, 2], 5) == [1, 2] and spread([1, 2], 0) == []
    assert deal([3, 1, 5], 6) == [3, 1, 2]
    assert deal([1, 1], 5) == [1, 1]


def test_covers_every_snr_and_is_deterministic(tmp_path):
    snrs = {f"spk{s}_u{i}_{snr}": snr for s in range(3) for i, snr in enumerate([-5, 0, 5, 10])}
    d = _data_dir(tmp_path, snrs)
    keys = list(snrs)
    picks = select_utts(keys, 4, d)
    assert sorted(snrs[k] for k in picks) == [-5, 0, 5, 10]
    assert [snrs[k] for k in picks] == [-5, 0, 5, 10]  # ascending SNR
    random.Random(1).shuffle(keys)
    assert select_utts(keys, 4, d) == picks
    # more picks than SNRs: dealt in turn; picks in one SNR come from different speakers
    six = select_utts(keys, 6, d)
    assert [snrs[k] for k in six] == [-5, -5, 0, 0, 5, 10]
    assert len({k.split("_")[0] for k in six if snrs[k] == -5}) == 2
    # fewer picks than SNRs: the lowest and the highest SNR, then between
    assert [snrs[k] for k in select_utts(keys, 2, d)] == [-5, 10]
    assert [snrs[k] for k in select_utts(keys, 3, d)] == [-5, 5, 10]
    assert select_utts(keys, 0, d) == select_utts(keys, 100, d) and len(select_utts(keys, 0, d)) == 12


def test_without_utt2snr_and_missing_values(tmp_path):
    keys = [f"u{i:02d}" for i in range(10)]
    assert select_utts(keys, 2) == ["u02", "u07"]
    assert select_utts(keys, 2, str(tmp_path)) == ["u02", "u07"]  # a data dir without utt2snr
    d = _data_dir(tmp_path, {"u00": 0, "u01": 5})  # the others: n/a, listed last
    assert select_utts(keys, 3, d) == ["u00", "u01", "u06"]
    with pytest.raises(InputError, match=">= 0"):
        select_utts(keys, -1)
    (tmp_path / "data" / "utt2snr").write_text("u00 loud\n")
    with pytest.raises(InputError, match="utt2snr: utterance 'u00': expected a number"):
        select_utts(keys, 2, d)
