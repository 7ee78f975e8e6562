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
