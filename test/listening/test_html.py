from avse.listening.html import href, index_page, summary_html


def test_links_and_index():
    assert href("tst/spk1_snr+05/a b.flac") == "tst/spk1_snr+05/a%20b.flac"
    assert href('x"&<.png') == "x%22%26%3C.png"
    sets = [{"name": "a", "link": "a/index.html", "n_systems": 1, "n_utts": 2, "n_missing": 0},
            {"name": "b", "link": "b/index.html", "n_systems": 0, "n_utts": 2, "n_missing": 3}]
    text = index_page("T <1>", sets, "exp")
    assert "<title>T &lt;1&gt;</title>" in text and "http" not in text
    assert "a</a>: 1 system, 2 utterances</li>" in text
    assert "b</a>: input only, 2 utterances, <span class=\"missing\">3 missing outputs" in text


def test_best_mean_in_bold():
    head = ["system", "utts", "SI-SDR (dB)", "T60 err"]
    rows = [["noisy", "4", "1.00", "0.500"], ["a", "4", "3.00", "-"], ["b", "4", "-", "0.200"]]
    text = "\n".join(summary_html(head, rows, ["b: undefined"], ["si_sdr", "t60_rel_err"]))
    assert "<b>3.00</b>" in text and "<b>0.200</b>" in text and text.count("<b>") == 2
    assert '<p class="note">b: undefined</p>' in text
    one = "\n".join(summary_html(head, rows[:1], [], ["si_sdr", "t60_rel_err"]))
    assert "<b>" not in one
