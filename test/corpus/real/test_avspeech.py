"""AVSpeech CSV streaming, sharding, resumable shard jobs and the external-sort merge."""
import json
import os

import pytest

from avse.bin import prep_avspeech
from avse.corpus.real import avspeech as avs
from avse.data.extsort import sort_file
from fake_corpora import make_avspeech


def test_clip_name_follows_the_official_convention():
    assert avs.clip_name("AbCdEfGh_-1", 12.5, 13.04) == "AbCdEfGh_-1_012.500000-013.040000"
    assert avs.clip_name("x", 0, 100.5) == "x_000.000000-100.500000"


def test_iter_csv_streams_rows_and_flags_bad_lines(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("yt1,1.0,2.5,0.5,0.25\n\nyt2,3,x,0.1,0.1\nyt3,5,4,0.1,0.1\nyt4,0,1,1.7,-0.2\nshort,1\n")
    rows = list(avs.iter_csv(str(p)))
    assert [r.index for r in rows] == [0, 1, 2, 3, 4]  # the blank line is not counted
    assert rows[0].name == "yt1_001.000000-002.500000" and (rows[0].x, rows[0].y) == (0.5, 0.25)
    assert "non-numeric" in rows[1].error and "invalid clip" in rows[2].error and "expected 5" in rows[4].error
    assert rows[3].error is None and (rows[3].x, rows[3].y) == (1.0, 0.0)  # face centre clamped


def test_shards_partition_the_lines_and_valid_split_is_per_video():
    for nj in (1, 3, 7):
        owners = [[j for j in range(1, nj + 1) if avs.in_shard(i, j, nj)] for i in range(50)]
        assert all(len(o) == 1 for o in owners)
    assert avs.is_valid("abc", 1000) and not avs.is_valid("abc", 0)
    frac = sum(avs.is_valid(f"v{i}", 100) for i in range(5000)) / 5000
    assert 0.08 < frac < 0.12


def test_sort_file_is_byte_ordered_unique_and_chunked(tmp_path):
    lines = ["b\t1", "A\t2", "-z\t3", "b\t4", "a\t5", "0\t6", "A\t7"]
    n, dup = sort_file(iter(lines), str(tmp_path / "out"), chunk_lines=2)
    assert (n, dup) == (5, 2)
    assert open(tmp_path / "out").read().splitlines() == ["-z\t3", "0\t6", "A\t2", "a\t5", "b\t1"]


def _args(root, out, nj, job=1, merge=False):
    from avse.utils.config import parse_args

    return parse_args(prep_avspeech.get_parser(), [
        "--train_csv", f"{root}/avspeech_train.csv", "--test_csv", f"{root}/avspeech_test.csv",
        "--clips_dir", f"{root}/clips", "--out_dir", str(out), "--data_dir", str(out / "data"),
        "--nj", str(nj), "--job", str(job), "--merge", str(merge).lower(), "--progress", "false",
        "--valid_permille", "400", "--test_subset", "2", "--chunk_lines", "2"])


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("avspeech")
    return str(root), make_avspeech(str(root))


def _tables(out, dset):
    d = out / "data" / dset
    return {t: open(d / t).read().replace(str(out), "OUT") for t in sorted(os.listdir(d))}


def test_prep_is_the_same_for_any_nj_and_resumes_a_killed_shard(tree, tmp_path):
    root, names = tree
    one = tmp_path / "one"
    prep_avspeech.run(_args(root, one, 1))
    log1 = one / "shards" / "rows.1.of1.jsonl"
    full = open(log1).read().splitlines()
    # a killed job: two complete records and half of the third
    with open(log1, "w") as f:
        f.write("\n".join(full[:2]) + "\n" + full[2][:15])
    prep_avspeech.run(_args(root, one, 1))
    assert open(log1).read().splitlines() == full
    prep_avspeech.run(_args(root, one, 1, merge=True))
    three = tmp_path / "three"
    for j in (1, 2, 3):
        prep_avspeech.run(_args(root, three, 3, job=j))
    prep_avspeech.run(_args(root, three, 3, merge=True))
    for dset in ("avspeech_train", "avspeech_valid", "avspeech_test", "avspeech_test_sub"):
        assert _tables(one, dset) == _tables(three, dset)
    got = sorted(_tables(one, "avspeech_train")["wav.scp"].split()[::2] +
                 _tables(one, "avspeech_valid")["wav.scp"].split()[::2])
    assert got == sorted(names["train"])
    assert len(_tables(one, "avspeech_test_sub")["wav.scp"].splitlines()) == 2
    summary = json.load(open(one / "report" / "summary.json"))
    assert summary["missing"] == 1 and summary["bad"] == 1 and summary["failed"] == 1
    assert open(one / "report" / "missing.txt").read().startswith(names["missing"][0] + "\t")
    assert open(one / "report" / "failed.txt").read().startswith(names["broken"][0] + "\t")


def test_merge_before_every_shard_ran_fails(tree, tmp_path):
    root, _ = tree
    prep_avspeech.run(_args(root, tmp_path / "x", 2, job=1))
    with pytest.raises(Exception, match="not every one of the 2 shards"):
        prep_avspeech.run(_args(root, tmp_path / "x", 2, merge=True))
