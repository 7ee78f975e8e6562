import json
import os
import re

import numpy as np
import pytest
import soundfile as sf

from avse.bin import make_results, score
from avse.errors import StageError
from avse.scoring.results import find_score_dirs, make_results as build
from testutils import speechlike

FS = 16000


def _scp(path, rows):
    with open(path, "w") as f:
        f.writelines(f"{k} {v}\n" for k, v in sorted(rows.items()))
    return str(path)


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """An experiment with two systems scored by avse.bin.score on one test set."""
    root = tmp_path_factory.mktemp("results")
    data, wav = root / "data", root / "wav"
    data.mkdir()
    wav.mkdir()
    rng = np.random.default_rng(1)
    ref, mix, enh = {}, {}, {}
    snrs = {"u1": -5, "u2": 5, "u3": 5}
    for i, (u, snr) in enumerate(snrs.items()):
        x = speechlike(1.5, seed=i, f0=120.0 + 20 * i)
        n = rng.standard_normal(x.size)
        n *= np.sqrt(np.mean(x ** 2) / np.mean(n ** 2) / 10 ** (snr / 10))
        for tab, sig, tag in ((ref, x, "c"), (mix, x + n, "m"), (enh, x + 0.3 * n, "e")):
            p = wav / f"{u}_{tag}.wav"
            sf.write(str(p), (0.9 * sig / np.max(np.abs(sig))).astype(np.float32), FS, subtype="FLOAT")
            tab[u] = str(p)
    _scp(data / "spk1.scp", ref)
    _scp(data / "utt2snr", snrs)
    _scp(data / "utt2noise", {"u1": "white", "u2": "white", "u3": "cafe"})
    mix_scp, enh_scp = _scp(root / "mix.scp", mix), _scp(root / "enh.scp", enh)
    timing = root / "timing.json"
    timing.write_text(json.dumps({"rtf": 0.25, "nfe": 60}))
    e = root / "exp"
    metrics = ["--metrics", "si_sdr", "pesq_nb", "pesq_nb_raw", "estoi"]
    common = ["--ref_scp", str(data / "spk1.scp"), "--data_dir", str(data), "--test_set", "tst"] + metrics
    # "aaa" sorts before "noisy": the noisy row must still come first
    assert score.main(common + ["--inf_scp", mix_scp, "--system", "noisy",
                                "--out_dir", str(e / "noisy" / "tst" / "score")]) == 0
    assert score.main(common + ["--inf_scp", enh_scp, "--system", "aaa",
                                "--out_dir", str(e / "prior" / "aaa" / "tst" / "score"),
                                "--timing_json", str(timing)]) == 0
    return e


def test_results_md(exp, tmp_path):
    out = tmp_path / "RESULTS.md"
    assert make_results.main(["--exp_dir", str(exp), "--out", str(out), "--title", "My results",
                              "--recipe", "mini_av/avse1"]) == 0
    text = out.read_text()
    assert text.startswith("# My results\n")
    assert "mini_av/avse1" in text
    assert re.search(r"git commit: (`[0-9a-f]{40}`|unknown)", text)
    for word in ("python:", "numpy", "pesq", "pystoi", "pyroomacoustics", "torch", "CPUs:", "GPU:", "UTC"):
        assert word in text, word
    assert "## Test set `tst`" in text
    lines = text.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("| system | utts"))
    cols = [c.strip() for c in lines[head].strip("|").split("|")]
    assert cols == ["system", "utts", "SI-SDR (dB)", "PESQ-NB (MOS-LQO)", "PESQ-NB raw", "ESTOI", "RTF", "NFE"]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[head + 2:head + 4]]
    assert [r[0] for r in rows] == ["noisy", "aaa"]
    # numbers come from the score dirs
    for r, d in zip(rows, [exp / "noisy" / "tst" / "score", exp / "prior" / "aaa" / "tst" / "score"]):
        s = json.loads((d / "summary.json").read_text())
        assert r[1] == "3"
        assert r[2] == f"{s['si_sdr']:.2f}" and r[3] == f"{s['pesq_nb']:.3f}" and r[5] == f"{s['estoi']:.3f}"
    assert rows[0][6:] == ["-", "-"] and rows[1][6:] == ["0.25", "60"]
    assert float(rows[1][2]) > float(rows[0][2])
    # condition tables: SNR columns in numeric order with counts, one row per system
    i = lines.index("#### SI-SDR (dB) by SNR (`utt2snr`)")
    assert lines[i + 2] == "| system | -5 dB (n=1) | 5 dB (n=2) |"
    assert lines[i + 4].startswith("| noisy |") and lines[i + 5].startswith("| aaa |")
    cond = json.loads((exp / "noisy" / "tst" / "score" / "conditions.json").read_text())
    g5 = next(g for g in cond["snr"]["groups"] if g["value"] == "5")
    assert lines[i + 4].split("|")[3].strip() == f"{g5['means']['si_sdr']:.2f}"
    assert "#### SI-SDR (dB) by noise type (`utt2noise`)" in text
    assert "<details><summary>Other metrics by SNR</summary>" in text and "**ESTOI**" in text
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # atomic write left no temp


def test_duplicate_system_names_and_several_sets(exp, tmp_path):
    import shutil

    e = tmp_path / "exp"
    shutil.copytree(exp, e)
    shutil.copytree(e / "prior" / "aaa", e / "prior2" / "aaa")
    other = e / "noisy" / "other" / "score"
    shutil.copytree(e / "noisy" / "tst" / "score", other)
    meta = json.loads((other / "meta.json").read_text())
    meta["test_set"] = "other"
    (other / "meta.json").write_text(json.dumps(meta))
    assert len(find_score_dirs(str(e))) == 4
    sets = build(str(e), str(tmp_path / "R.md"))
    assert sets == {"other": ["noisy"], "tst": ["noisy", "aaa (prior/aaa)", "aaa (prior2/aaa)"]}
    text = (tmp_path / "R.md").read_text()
    assert text.index("## Test set `other`") < text.index("## Test set `tst`")


def test_no_score_dirs(tmp_path):
    (tmp_path / "exp").mkdir()
    with pytest.raises(StageError, match="no score/meta.json"):
        build(str(tmp_path / "exp"), str(tmp_path / "R.md"))
    assert make_results.main(["--exp_dir", str(tmp_path / "exp"), "--out", str(tmp_path / "R.md")]) == 1
    assert not (tmp_path / "R.md").exists()


def test_separation_rows_say_how_their_sources_were_paired(exp, tmp_path):
    import shutil

    e = tmp_path / "exp"
    shutil.copytree(exp, e)
    shutil.copytree(e / "prior" / "aaa", e / "prior" / "aaa_pit")
    for name, assignment in (("aaa", "fixed"), ("aaa_pit", "pit")):
        path = e / "prior" / name / "tst" / "score" / "meta.json"
        meta = json.loads(path.read_text())
        meta.update(system=name, n_sources=2, assignment=assignment)
        path.write_text(json.dumps(meta))
    build(str(e), str(tmp_path / "R.md"))
    text = (tmp_path / "R.md").read_text()
    assert "- aaa: 2 sources, fixed assignment (output k against talker k, no permutation)" in text
    assert "- aaa_pit: 2 sources, permutation-invariant" in text
    assert not re.search(r"^- noisy: .*sources", text, re.M)   # one-source rows: no such note
