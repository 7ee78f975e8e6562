import pytest

from avse.errors import InputError
from avse.io.scp import c_sorted, inverse_table, read_table, split_keys, write_table


def test_round_trip_sorted_in_byte_order(tmp_path):
    p = tmp_path / "t.scp"
    write_table(str(p), {"b": "2", "B": "1", "a_1": "x y z", "a-1": "w"})
    lines = p.read_text().splitlines()
    assert [l.split()[0] for l in lines] == ["B", "a-1", "a_1", "b"]  # LC_ALL=C order
    assert read_table(str(p))["a_1"] == "x y z"


@pytest.mark.parametrize("content,msg", [
    ("u1 a\nu1 b\n", "duplicate key 'u1'"),
    ("u1\n", "no value"),
    (" u1 a\n", "white space"),
])
def test_bad_tables_name_file_and_line(tmp_path, content, msg):
    p = tmp_path / "bad.scp"
    p.write_text(content)
    with pytest.raises(InputError, match=msg) as e:
        read_table(str(p))
    assert "bad.scp:" in str(e.value)


def test_missing_file_and_bad_keys(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_table(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="white space"):
        write_table(str(tmp_path / "x"), {"utt one": "a"})


def test_split_balanced_contiguous_and_grouped():
    keys = [f"u{i:02d}" for i in range(10)]
    parts = split_keys(keys, 3)
    assert sum(parts, []) == keys
    assert sorted(len(p) for p in parts) == [3, 3, 4]
    groups = {k: ("s1" if i < 6 else "s2") for i, k in enumerate(keys)}
    parts = split_keys(keys, 2, groups)
    assert parts == [keys[:6], keys[6:]]
    with pytest.raises(InputError):
        split_keys(keys, 0)


def test_inverse_and_c_sorted():
    assert inverse_table({"u2": "s", "u1": "s", "v": "t"}) == {"s": ["u1", "u2"], "t": ["v"]}
    assert c_sorted(["a", "B", "_"]) == ["B", "_", "a"]
