"""Per-source table names of a K-talker data dir (avse.data.sources)."""
from avse.data.datadir import is_utt_table
from avse.data.sources import source_indices, source_table


def test_names_and_indices():
    assert source_table("video.scp", 1) == "video.scp"
    assert source_table("video.scp", 2) == "video2.scp"
    assert source_table("lip_conf.scp", 3) == "lip_conf3.scp"
    assert source_table("utt2face", 2) == "utt2face2"
    assert source_table("/d/x/lip_feats.scp", 2) == "/d/x/lip_feats2.scp"
    # talkers 2.. without gaps
    assert source_indices("video.scp", ["video.scp", "video2.scp", "video3.scp", "video5.scp"]) == [2, 3]
    assert source_indices("lip.scp", ["lip.scp", "lip_conf2.scp"]) == []
    # they are per-utterance tables of a data dir (checked, copied by stage 3)
    for name in ("video2.scp", "lip2.scp", "lip_conf2.scp", "lip_feats3.scp", "utt2face2"):
        assert is_utt_table(name)
