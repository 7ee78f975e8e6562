import json
import os
from html.parser import HTMLParser
from urllib.parse import unquote

import numpy as np
import pytest
import soundfile as sf

from avse.bin import listening_page
from avse.errors import InputError
from avse.listening.build import build_pages
from testutils import LISTEN_METRICS as METRICS, LISTEN_SNRS as SNRS, scored_experiment

FS = 16000


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return scored_experiment(tmp_path_factory.mktemp("listen"))


class Page(HTMLParser):
    """Links and table cells of one page."""

    def __init__(self, path):
        super().__init__()
        self.links, self.tables, self.ids = [], [], []
        self._cell = None
        with open(path, encoding="utf-8") as f:
            self.feed(f.read())

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"])
        if tag in ("audio", "img", "script", "link") and a.get("src"):
            self.links.append((tag, a["src"]))
        if tag == "a":
            self.links.append((tag, a["href"]))
        if tag == "table":
            self.tables.append({"class": a.get("class"), "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1]["rows"][-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _pages(out):
    return [os.path.join(r, f) for r, _, fs in os.walk(out) for f in fs if f.endswith(".html")]


def _snapshot(out):
    snap = {}
    for r, _, fs in os.walk(out):
        for f in fs:
            p = os.path.join(r, f)
            with open(p, "rb") as fh:
                snap[p] = (os.stat(p).st_mtime_ns, fh.read())
    return snap


def _table(path, scp):
    return {k: float(v) for k, v in (ln.split() for ln in open(os.path.join(path, scp)))}


def test_page(exp, tmp_path, capfd):
    out = tmp_path / "listening"
    assert listening_page.main(["--exp_dir", str(exp), "--out_dir", str(out), "--max_utts", "3"]) == 0
    pages = _pages(out)
    assert sorted(os.path.relpath(p, out) for p in pages) == ["index.html", os.path.join("tst", "index.html")]
    # every link is relative and resolves to a file in the page folder
    for page in pages:
        for tag, link in Page(page).links:
            assert "://" not in link and not link.startswith("/"), link
            if link.startswith("#"):
                assert unquote(link[1:]) in Page(page).ids
                continue
            target = os.path.realpath(os.path.join(os.path.dirname(page), unquote(link)))
            assert target.startswith(os.path.realpath(out) + os.sep) and os.path.isfile(target), (page, link)
    p = Page(out / "tst" / "index.html")
    players = [src for tag, src in p.links if tag == "audio"]
    assert len(players) == 3 * 4 and len([s for t, s in p.links if t == "img"]) == 3 * 4
    assert all(sf.info(str(out / "tst" / s)).subtype == "PCM_16" for s in players)
    # the means table: the means of the score files
    summary = next(t for t in p.tables if t["class"] == "summary")["rows"]
    assert summary[0] == ["system", "utts", "SI-SDR (dB)", "ESTOI"]
    assert [r[0] for r in summary[1:]] == ["noisy", "sysA", "sysB"]
    dirs = [exp / "noisy" / "tst" / "score"] + [exp / "prior" / s / "tst" / "score" for s in ("sysA", "sysB")]
    for row, d in zip(summary[1:], dirs):
        assert row[1] == "6"
        for cell, m, dec in zip(row[2:], METRICS, (2, 3)):
            vals = _table(d, m).values()
            assert abs(float(cell) - np.mean(list(vals))) <= 0.5 * 10 ** -dec + 1e-4, (d, m, cell)
    # selection: one utterance per SNR, in SNR order; per-utterance scores from the score files
    utts = [t for t in p.tables if t["class"] == "utt"]
    assert [i[2:] for i in p.ids if i.startswith("u-")] == ["spkB_u1", "spkB_u2", "spkB_u3"]
    assert sorted(SNRS[u] for u in ["spkB_u1", "spkB_u2", "spkB_u3"]) == [-5, 0, 5]
    for utt, t in zip(["spkB_u1", "spkB_u2", "spkB_u3"], utts):
        assert [r[0] for r in t["rows"]] == ["signal", "noisy input", "clean reference", "sysA", "sysB"]
        for row, d in zip([t["rows"][1], t["rows"][3], t["rows"][4]], dirs):
            assert row[3] == f"{_table(d, 'si_sdr')[utt]:.2f}" and row[4] == f"{_table(d, 'estoi')[utt]:.3f}"
        assert t["rows"][2][3:] == ["", ""]
    text = (out / "tst" / "index.html").read_text()
    assert "SNR -5 dB, noise white" in text and "Missing outputs" not in text
    assert "tst</a>: 2 systems, 3 utterances</li>" in (out / "index.html").read_text()
    # deterministic: a second folder gets the same pages and files
    out2 = tmp_path / "again"
    build_pages(str(exp), str(out2), max_utts=3, config=None)
    assert (out2 / "tst" / "index.html").read_text() == text
    assert sorted(os.listdir(out2 / "tst")) == sorted(os.listdir(out / "tst"))
    # a rerun is a no-op: no file written, none touched
    before = _snapshot(out)
    capfd.readouterr()
    assert listening_page.main(["--exp_dir", str(exp), "--out_dir", str(out), "--max_utts", "3"]) == 0
    assert _snapshot(out) == before
    assert "wrote 0 clips and 0 spectrograms (12 up to date, 0 missing)" in capfd.readouterr().err
    # a lost file is made again, alone
    os.unlink(out / "tst" / "spkB_u3" / "prior_sysA.flac")
    assert listening_page.main(["--exp_dir", str(exp), "--out_dir", str(out), "--max_utts", "3"]) == 0
    assert "wrote 1 clips and 0 spectrograms (11 up to date, 0 missing)" in capfd.readouterr().err
    # fewer utterances: the files of the others go
    assert listening_page.main(["--exp_dir", str(exp), "--out_dir", str(out), "--max_utts", "1"]) == 0
    assert sorted(d for d in os.listdir(out / "tst") if d != "index.html") == ["spkB_u2"]


def test_missing_output_is_reported(tmp_path, capfd):
    exp = scored_experiment(tmp_path)
    gone = exp / "prior" / "sysB" / "tst" / "wav" / "spkB_u2.wav"
    gone.unlink()
    out = tmp_path / "listening"
    capfd.readouterr()
    assert listening_page.main(["--exp_dir", str(exp), "--out_dir", str(out), "--max_utts", "3"]) == 0
    scp = exp / "prior" / "sysB" / "tst" / "wav.scp"
    why = f"exp/prior/sysB/tst/wav/spkB_u2.wav: audio file not found (utterance 'spkB_u2' of {scp})"
    assert f"WARNING avse.listening: sysB: {why}" in capfd.readouterr().err
    text = (out / "tst" / "index.html").read_text()
    assert "Missing outputs (1)" in text and f"missing: {why}".replace("'", "&#x27;") in text
    assert "1 missing outputs" in (out / "index.html").read_text()
    assert not (out / "tst" / "spkB_u2" / "prior_sysB.flac").exists()
    assert (out / "tst" / "spkB_u2" / "prior_sysA.flac").is_file()
    # a whole system's outputs gone: one line naming its scp
    os.unlink(exp / "prior" / "sysA" / "tst" / "wav.scp")
    assert listening_page.main(["--exp_dir", str(exp), "--out_dir", str(out), "--max_utts", "3"]) == 0
    assert capfd.readouterr().err.count("wav.scp: not found") == 1
    assert not (out / "tst" / "spkB_u2" / "prior_sysA.flac").exists()
    # the output comes back: the next run fills it in
    sf.write(str(gone), np.zeros(FS // 2, np.float32) + 0.01, FS)
    capfd.readouterr()
    assert listening_page.main(["--exp_dir", str(exp), "--out_dir", str(out), "--max_utts", "3"]) == 0
    assert (out / "tst" / "spkB_u2" / "prior_sysB.flac").is_file()
    # its clip, and the spectrograms of its utterance (one colour scale)
    assert "wrote 1 clips and 3 spectrograms" in capfd.readouterr().err


def test_options_from_yaml_and_errors(exp, tmp_path):
    cfg = tmp_path / "conf.yaml"
    cfg.write_text("max_utts: 2\naudio_format: wav\nnormalize: peak\ntest_sets: [tst]\n")
    out = tmp_path / "l"
    assert listening_page.main(["--config", str(cfg), "--exp_dir", str(exp), "--out_dir", str(out)]) == 0
    wavs = sorted(f for r, _, fs in os.walk(out) for f in fs if f.endswith(".wav"))
    assert len(wavs) == 2 * 4 and not any(f.endswith(".flac") for r, _, fs in os.walk(out) for f in fs)
    x, _ = sf.read(str(out / "tst" / "spkB_u1" / "input.wav"))
    assert abs(np.max(np.abs(x)) - 10 ** (-1 / 20)) < 1e-3
    with pytest.raises(InputError, match="no scores of test set.*other.*scored: tst"):
        build_pages(str(exp), str(tmp_path / "x"), test_sets=["other"])
    assert listening_page.main(["--exp_dir", str(tmp_path / "none"), "--out_dir", str(tmp_path / "y")]) == 1


def test_two_source_rows(exp, tmp_path):
    """A separation entry (two references, two estimates) gets a clip per source."""
    import shutil

    e = tmp_path / "exp"
    shutil.copytree(exp / "noisy", e / "noisy")
    sep = e / "sep" / "tst" / "score"
    shutil.copytree(exp / "prior" / "sysA" / "tst" / "score", sep)
    meta = json.loads((sep / "meta.json").read_text())
    a = str(exp / "prior" / "sysA" / "tst" / "wav.scp")
    meta.update(system="sep", ref_scp=meta["ref_scp"] * 2, inf_scp=[a, a], n_sources=2)
    (sep / "meta.json").write_text(json.dumps(meta))
    cwd = os.getcwd()
    os.chdir(exp.parent)
    try:
        build_pages(str(e), str(tmp_path / "l"), max_utts=1)
    finally:
        os.chdir(cwd)
    files = sorted(os.listdir(tmp_path / "l" / "tst" / "spkB_u2"))
    assert files == sorted(f"{s}.{x}" for s in ("input", "reference_s1", "reference_s2", "sep_s1", "sep_s2")
                           for x in ("flac", "png"))
