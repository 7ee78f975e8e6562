from avse.listening.sources import AudioTable, resolve, utt_conditions


def test_relative_paths_resolve_from_the_recipe_dir(tmp_path, monkeypatch):
    recipe = tmp_path / "recipe"
    (recipe / "exp" / "sys" / "wav").mkdir(parents=True)
    (recipe / "exp" / "sys" / "wav" / "u1.wav").write_bytes(b"RIFF")
    scp = recipe / "exp" / "sys" / "wav.scp"
    scp.write_text("u1 exp/sys/wav/u1.wav\nu2 exp/sys/wav/u2.wav\nu3 sox x.wav -t wav - |\n")
    monkeypatch.chdir(tmp_path)
    assert resolve("exp/sys/wav/u1.wav", str(scp)) == str(recipe / "exp/sys/wav/u1.wav")
    assert resolve("/abs/x.wav", str(scp)) == "/abs/x.wav"
    t = AudioTable(str(scp))
    assert t.lookup("u1") == (str(recipe / "exp/sys/wav/u1.wav"), None)
    assert t.lookup("u2") == (None, f"exp/sys/wav/u2.wav: audio file not found (utterance 'u2' of {scp})")
    assert t.lookup("u3") == ("sox x.wav -t wav - |", None)  # a pipe is run when read
    assert t.lookup("u4") == (None, f"{scp}: no entry for utterance 'u4'")
    gone = AudioTable(str(tmp_path / "none.scp"))
    assert gone.lookup("u1") == (None, f"{tmp_path / 'none.scp'}: not found")


def test_conditions(tmp_path):
    (tmp_path / "utt2snr").write_text("a 5\nb -5\n")
    (tmp_path / "utt2t60").write_text("a 0.4 0.43\n")
    assert utt_conditions(str(tmp_path), ["a", "b", "c"]) == {"a": "SNR 5 dB, T60 0.4 s", "b": "SNR -5 dB",
                                                              "c": ""}
    assert utt_conditions(None, ["a"]) == {"a": ""}


def test_estimates_scored_twice_make_one_row(tmp_path):
    """A separation scored against each output's own talker and again with PIT (stage 6's
    ``<name>_pit`` entry) has one row of audio, labelled with both names."""
    from avse.listening.sources import test_set_rows

    exp = tmp_path / "exp" / "sep" / "test_2spk"
    scps = []
    for k in (1, 2):
        (exp / f"spk{k}.scp").parent.mkdir(parents=True, exist_ok=True)
        (exp / f"spk{k}.scp").write_text(f"u1 {exp}/u1_s{k}.wav\n")
        scps.append(str(exp / f"spk{k}.scp"))

    def entry(name, score):
        d = exp / score
        d.mkdir(parents=True)
        (d / "si_sdr").write_text("u1 3.0\n")
        return {"dir": str(d), "rel": f"sep/test_2spk/{score}", "system": name, "name": name,
                "meta": {"inf_scp": scps, "ref_scp": [str(tmp_path / "r1.scp"), str(tmp_path / "r2.scp")]},
                "summary": {"si_sdr": 3.0}}

    rows, metrics, _ = test_set_rows([entry("enhance_sep", "score"), entry("enhance_sep_pit", "pit_score")])
    assert [r["kind"] for r in rows] == ["reference", "system"] and metrics == ["si_sdr"]
    assert rows[1]["label"] == "enhance_sep (also scored as enhance_sep_pit)"
    assert [t.path for t in rows[1]["tables"]] == scps
