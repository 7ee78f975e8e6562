import json
import os

import numpy as np
import pytest
import soundfile as sf

from avse.bin import score
from avse.errors import InputError
from avse.utils.config import parse_args
from testutils import speechlike

FS = 16000
SNRS = [-5, 10, 5, 5]
NOISES = ["white", "babble", "white", "babble"]
T60S = [0.2, 0.45, 0.8, 1.5]


def _noise_at(x, snr, rng):
    n = rng.standard_normal(x.size)
    return n * np.sqrt(np.mean(x ** 2) / np.mean(n ** 2) / 10 ** (snr / 10))


def _write_scp(path, rows):
    with open(path, "w") as f:
        f.writelines(f"{k} {v}\n" for k, v in sorted(rows.items()))
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 utterances: clean refs, noisy mixtures, an 'enhanced' output, condition tables."""
    root = tmp_path_factory.mktemp("score")
    data = root / "data"
    wav = root / "wav"
    data.mkdir()
    wav.mkdir()
    rng = np.random.default_rng(0)
    ref, mix, enh = {}, {}, {}
    for i, snr in enumerate(SNRS):
        u = f"utt{i}"
        x = speechlike(2.0, seed=i, f0=110.0 + 15 * i)
        n = _noise_at(x, snr, rng)
        for tab, sig, tag in ((ref, x, "clean"), (mix, x + n, "mix"), (enh, x + 0.2 * n, "enh")):
            p = wav / f"{u}_{tag}.wav"
            sf.write(str(p), (sig / max(1.0, np.max(np.abs(sig)) / 0.9)).astype(np.float32), FS, subtype="FLOAT")
            tab[u] = str(p)
    _write_scp(data / "spk1.scp", ref)
    _write_scp(data / "wav.scp", mix)
    _write_scp(root / "enh.scp", enh)
    _write_scp(data / "utt2snr", {f"utt{i}": s for i, s in enumerate(SNRS)})
    _write_scp(data / "utt2noise", {f"utt{i}": s for i, s in enumerate(NOISES)})
    _write_scp(data / "utt2t60", {f"utt{i}": f"{t:.2f} {t + 0.1:.2f}" for i, t in enumerate(T60S)})
    return root


def read_vals(path):
    out = {}
    for line in open(path):
        k, v = line.split()
        out[k] = v
    return out


def test_end_to_end_and_nj(corpus, tmp_path):
    d = corpus / "data"
    timing = tmp_path / "timing.json"
    timing.write_text(json.dumps({"rtf": 0.5, "nfe": 60, "per_utt": {"utt0": 1.0}}))
    outs = {}
    for nj in (2, 1):
        out = tmp_path / f"sys_nj{nj}" / "test_noisy" / "score"
        argv = ["--ref_scp", str(d / "spk1.scp"), "--inf_scp", str(corpus / "enh.scp"),
                "--out_dir", str(out), "--nj", str(nj), "--data_dir", str(d),
                "--mix_scp", str(d / "wav.scp"), "--timing_json", str(timing)]
        assert score.main(argv) == 0
        outs[nj] = out
    out = outs[2]
    metrics = ["si_sdr", "pesq_wb", "pesq_nb", "pesq_nb_raw", "estoi", "si_sdri"]
    for name in metrics + ["summary.json", "meta.json", "conditions.json", "conditions.md",
                           "by_snr.png", "config.yaml", ".done"]:
        assert (out / name).is_file(), name
    for m in metrics:
        a = (outs[1] / m).read_text()
        assert a == (outs[2] / m).read_text(), m  # --nj does not change anything
        lines = a.splitlines()
        assert [ln.split()[0] for ln in lines] == ["utt0", "utt1", "utt2", "utt3"]
        assert all(len(ln.split()[1].split(".")[1]) == 4 for ln in lines)
    si = {k: float(v) for k, v in read_vals(out / "si_sdr").items()}
    # enhanced = clean + 0.2 noise: ~14 dB above the mixture SNR
    for i, snr in enumerate(SNRS):
        assert si[f"utt{i}"] == pytest.approx(snr + 20 * np.log10(5), abs=0.5)
    sdri = {k: float(v) for k, v in read_vals(out / "si_sdri").items()}
    assert all(v == pytest.approx(20 * np.log10(5), abs=0.5) for v in sdri.values())

    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_utts"] == 4
    assert summary["n_failed"] == {m: 0 for m in metrics}
    assert summary["si_sdr"] == pytest.approx(np.mean(list(si.values())), abs=1e-3)
    assert 1.0 < summary["pesq_wb"] < 4.7 and 0 < summary["estoi"] < 1

    meta = json.loads((out / "meta.json").read_text())
    assert meta["system"] == "sys_nj2" and meta["test_set"] == "test_noisy"  # from the layout
    assert meta["rtf"] == 0.5 and meta["nfe"] == 60 and "per_utt" not in meta
    assert meta["date"].endswith("Z") and meta["metrics"] == metrics

    cond = json.loads((out / "conditions.json").read_text())
    assert set(cond) == {"snr", "noise", "t60"}
    snr = [(g["value"], g["n"]) for g in cond["snr"]["groups"]]
    assert snr == [("-5", 1), ("5", 2), ("10", 1)]  # numeric order
    g5 = cond["snr"]["groups"][1]
    assert g5["means"]["si_sdr"] == pytest.approx((si["utt2"] + si["utt3"]) / 2, abs=1e-3)
    assert [(g["value"], g["n"]) for g in cond["noise"]["groups"]] == [("babble", 2), ("white", 2)]
    assert cond["noise"]["groups"][0]["means"]["si_sdr"] == pytest.approx((si["utt1"] + si["utt3"]) / 2, abs=1e-3)
    assert [(g["value"], g["n"]) for g in cond["t60"]["groups"]] == [
        ("[0, 0.3)", 1), ("[0.3, 0.6)", 1), ("[0.6, 1)", 1), ("[1, inf)", 1)]
    md = (out / "conditions.md").read_text()
    assert "| -5 dB | 1 |" in md and "| babble | 2 |" in md and "[1, inf) s" in md


def test_rerun_skips_unchanged_inputs_and_rescores_changed_ones(corpus, tmp_path):
    d = corpus / "data"
    enh = tmp_path / "enh.scp"
    enh.write_text((corpus / "enh.scp").read_text())
    out = tmp_path / "sys" / "test" / "score"
    argv = ["--ref_scp", str(d / "spk1.scp"), "--inf_scp", str(enh), "--out_dir", str(out),
            "--metrics", "si_sdr", "--data_dir", str(d)]

    def run(*extra):
        assert score.main(argv + list(extra)) == 0
        return json.loads((out / "meta.json").read_text())["date"], (out / "si_sdr").read_text()

    first = run()
    (out / "meta.json").write_text(json.dumps({"date": "marker"}))  # a re-score would rewrite it
    assert run() == ("marker", first[1])  # same inputs: skipped
    assert run("--nj", "2")[0] == "marker"  # worker count does not change a score
    assert run("--skip_done", "false")[0] != "marker"  # forced
    (out / "meta.json").write_text(json.dumps({"date": "marker"}))
    assert run("--metrics", "si_sdr", "sdr")[0] != "marker"  # other options: scored again
    # another estimate for utt0 (a new file in the table): scored again
    row = enh.read_text().splitlines()
    other = tmp_path / "utt0_other.wav"
    sf.write(str(other), np.asarray(sf.read(row[1].split()[1])[0], np.float32), FS, subtype="FLOAT")
    enh.write_text("\n".join([f"utt0 {other}"] + row[1:]) + "\n")
    (out / "meta.json").write_text(json.dumps({"date": "marker"}))
    date, vals = run("--metrics", "si_sdr", "sdr")
    assert date != "marker"
    assert vals.splitlines()[0] != first[1].splitlines()[0]  # utt0 now scored on utt1's estimate
    # an audio file rewritten in place (same table): scored again
    (out / "meta.json").write_text(json.dumps({"date": "marker"}))
    x, _ = sf.read(str(other))
    sf.write(str(other), (0.5 * x + 0.01).astype(np.float32), FS, subtype="FLOAT")
    os.utime(other, ns=(os.stat(other).st_atime_ns, os.stat(other).st_mtime_ns + 10 ** 9))
    assert run("--metrics", "si_sdr", "sdr")[0] != "marker"


def test_custom_t60_bins_and_missing_condition(corpus, tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    _write_scp(d / "utt2t60", {"utt0": "0.2", "utt1": "0.5", "utt2": "0.8"})  # utt3 missing
    out = tmp_path / "s"
    argv = ["--ref_scp", str(corpus / "data" / "spk1.scp"), "--inf_scp", str(corpus / "data" / "wav.scp"),
            "--out_dir", str(out), "--metrics", "si_sdr", "--data_dir", str(d), "--t60_bins", "0", "0.5",
            "--system", "noisy", "--test_set", "t"]
    assert score.main(argv) == 0
    cond = json.loads((out / "conditions.json").read_text())
    assert [(g["value"], g["n"]) for g in cond["t60"]["groups"]] == [("[0, 0.5)", 1), ("[0.5, inf)", 2),
                                                                     ("n/a", 1)]
    assert not (out / "by_snr.png").exists()  # no utt2snr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["system"] == "noisy" and meta["test_set"] == "t"


def test_missing_key_is_named(corpus, tmp_path):
    ref = {}
    for line in open(corpus / "data" / "spk1.scp"):
        k, v = line.split()
        ref[k] = v
    del ref["utt2"]
    short = _write_scp(tmp_path / "ref_short.scp", ref)
    args = parse_args(score.get_parser(), ["--ref_scp", short, "--inf_scp", str(corpus / "enh.scp"),
                                           "--out_dir", str(tmp_path / "o"), "--metrics", "si_sdr"])
    with pytest.raises(InputError, match="utt2"):
        score.run(args)
    assert score.main(["--ref_scp", short, "--inf_scp", str(corpus / "enh.scp"),
                       "--out_dir", str(tmp_path / "o"), "--metrics", "si_sdr"]) == 1
    # extra reference keys are fine: score a subset
    sub = _write_scp(tmp_path / "inf_sub.scp", {"utt0": ref["utt0"]})
    assert score.main(["--ref_scp", str(corpus / "data" / "spk1.scp"), "--inf_scp", sub,
                       "--out_dir", str(tmp_path / "o2"), "--metrics", "si_sdr"]) == 0
    assert read_vals(tmp_path / "o2" / "si_sdr") == {"utt0": "100.0000"}


def test_bad_options(corpus, tmp_path):
    base = ["--ref_scp", str(corpus / "data" / "spk1.scp"), "--inf_scp", str(corpus / "enh.scp"),
            "--out_dir", str(tmp_path / "o")]
    args = parse_args(score.get_parser(), base + ["--metrics", "si_sdr", "si_sdri"])
    with pytest.raises(InputError, match="si_sdri needs --mix_scp"):
        score.run(args)
    args = parse_args(score.get_parser(), base + ["--metrics", "si_sdr", "pesq"])
    with pytest.raises(InputError, match="unknown metric 'pesq'"):
        score.run(args)
    assert score.main(base + ["--t60_bins", "0.5", "0.3"]) == 1


def test_bad_audio_names_utterance(corpus, tmp_path):
    bad = tmp_path / "bad.wav"
    sf.write(str(bad), np.full(16000, np.nan, dtype=np.float32), FS, subtype="FLOAT")
    inf = _write_scp(tmp_path / "inf.scp", {"utt1": str(bad)})
    args = parse_args(score.get_parser(), ["--ref_scp", str(corpus / "data" / "spk1.scp"), "--inf_scp", inf,
                                           "--out_dir", str(tmp_path / "o"), "--metrics", "si_sdr"])
    with pytest.raises(InputError, match="utt1"):
        score.run(args)


def test_silent_estimate_counted_as_failed(corpus, tmp_path):
    z = tmp_path / "zero.wav"
    sf.write(str(z), np.zeros(32000, dtype=np.float32), FS)
    inf = _write_scp(tmp_path / "inf.scp", {"utt0": str(z), "utt1": open(corpus / "enh.scp").read().split()[3]})
    out = tmp_path / "o"
    assert score.main(["--ref_scp", str(corpus / "data" / "spk1.scp"), "--inf_scp", inf,
                       "--out_dir", str(out), "--metrics", "si_sdr", "estoi"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_failed"] == {"si_sdr": 1, "estoi": 1}
    assert summary["si_sdr"] == pytest.approx(float(read_vals(out / "si_sdr")["utt1"]), abs=1e-4)
    assert read_vals(out / "si_sdr")["utt0"] == "nan"


def _two_talkers(tmp_path):
    """Two talkers a, b per utterance and their estimates, swapped on utt1 and utt3: data dir
    ``data/`` (spk1.scp, spk2.scp, wav.scp) and estimate dir ``est/`` (spk1.scp, spk2.scp);
    returns ``{name: scp path}`` with names r1 r2 e1 e2 mx."""
    rng = np.random.default_rng(5)
    wav = tmp_path / "wav"
    for d in (wav, tmp_path / "data", tmp_path / "est"):
        d.mkdir()
    r1, r2, e1, e2, mx = {}, {}, {}, {}, {}
    for i in range(4):
        u = f"utt{i}"
        a = speechlike(1.0, seed=20 + i, f0=100.0)
        b = speechlike(1.0, seed=40 + i, f0=190.0)
        ea = a + 0.02 * rng.standard_normal(a.size)
        eb = b + 0.02 * rng.standard_normal(b.size)
        if i % 2:
            ea, eb = eb, ea
        for tab, sig, tag in ((r1, a, "a"), (r2, b, "b"), (e1, ea, "ea"), (e2, eb, "eb"), (mx, a + b, "m")):
            p = wav / f"{u}_{tag}.wav"
            sf.write(str(p), sig.astype(np.float32) * 0.9, FS, subtype="FLOAT")
            tab[u] = str(p)
    names = {"r1": "data/spk1.scp", "r2": "data/spk2.scp", "mx": "data/wav.scp", "e1": "est/spk1.scp",
             "e2": "est/spk2.scp"}
    return {n: _write_scp(tmp_path / names[n], t) for n, t in
            (("r1", r1), ("r2", r2), ("e1", e1), ("e2", e2), ("mx", mx))}


def test_separation_permutation(corpus, tmp_path):
    """Two sources; estimates swapped on utt1 and utt3: perm must say so, scores unaffected."""
    scp = _two_talkers(tmp_path)
    out = tmp_path / "sep"
    argv = ["--ref_scp", scp["r1"], "--ref_scp", scp["r2"], "--inf_scp", scp["e1"], "--inf_scp", scp["e2"],
            "--mix_scp", scp["mx"], "--out_dir", str(out), "--metrics", "si_sdr", "--nj", "2"]
    assert score.main(argv) == 0
    perm = {line.split()[0]: line.split()[1:] for line in open(out / "perm")}
    assert perm == {"utt0": ["1", "2"], "utt1": ["2", "1"], "utt2": ["1", "2"], "utt3": ["2", "1"]}
    si = {k: float(v) for k, v in read_vals(out / "si_sdr").items()}
    assert all(v > 10 for v in si.values())
    sdri = {k: float(v) for k, v in read_vals(out / "si_sdri").items()}
    assert all(v > 10 for v in sdri.values())
    # mismatched counts of references and estimates
    assert score.main(["--ref_scp", scp["r1"], "--inf_scp", scp["e1"], "--inf_scp", scp["e2"],
                       "--out_dir", str(tmp_path / "x")]) == 1


def test_fixed_assignment_scores_each_output_against_its_own_talker(tmp_path):
    """Estimates bound to talkers (sources.json: fixed, as an AV prior with per-source lips
    writes) are scored without permutation: the swapped utt1 and utt3 score badly."""
    scp = _two_talkers(tmp_path)
    data, est = str(tmp_path / "data"), str(tmp_path / "est")

    def run(name, *extra):
        out = tmp_path / name
        assert score.main(["--ref_scp", scp["r1"], "--inf_scp", scp["e1"], "--data_dir", data,
                           "--out_dir", str(out), "--metrics", "si_sdr", *extra]) == 0
        meta = json.loads((out / "meta.json").read_text())
        return {k: float(v) for k, v in read_vals(out / "si_sdr").items()}, meta, out

    # no sources.json: the K sources of the data dir, permutation-invariant (as before)
    si, meta, out = run("pit")
    assert meta["n_sources"] == 2 and meta["assignment"] == "pit" and (out / "perm").exists()
    assert all(v > 10 for v in si.values())
    # the estimates say they are bound to the talkers: auto -> fixed
    (tmp_path / "est" / "sources.json").write_text(json.dumps({"n_sources": 2, "assignment": "fixed"}))
    si, meta, out = run("fixed")
    assert meta["assignment"] == "fixed" and not (out / "perm").exists()
    assert si["utt0"] > 10 and si["utt2"] > 10 and si["utt1"] < 0 and si["utt3"] < 0
    sdri = {k: float(v) for k, v in read_vals(out / "si_sdri").items()}
    assert sdri["utt0"] > 10 and sdri["utt1"] < 0
    # both rows of one system: the option overrides sources.json
    si_pit, meta, out = run("both_pit", "--assignment", "pit")
    assert meta["assignment"] == "pit" and all(v > 10 for v in si_pit.values())
    os.unlink(tmp_path / "est" / "sources.json")
    si, meta, _ = run("forced", "--assignment", "fixed")
    assert meta["assignment"] == "fixed" and si["utt1"] < 0
    # one source: no assignment
    _, meta, _ = run("one", "--pit", "off", "--assignment", "fixed")
    assert meta["n_sources"] == 1 and meta["assignment"] is None
    (tmp_path / "est" / "sources.json").write_text(json.dumps({"assignment": "random"}))
    with pytest.raises(InputError, match="sources.json.*assignment"):
        score.run(parse_args(score.get_parser(), ["--ref_scp", scp["r1"], "--inf_scp", scp["e1"],
                                                  "--data_dir", data, "--out_dir", str(tmp_path / "bad")]))
