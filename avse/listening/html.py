"""HTML of the listening page: plain strings, no templates, nothing from the network.

Every link is relative (``urllib.parse.quote`` of a path under the page folder), every
text is escaped, and the only script is inline: it pauses the other players when one
starts, so two clips are never heard at once. The output depends only on its inputs (no
date), so an unchanged experiment gives byte-identical pages.
"""
from html import escape
from typing import List, Optional, Sequence
from urllib.parse import quote

from avse.metrics import label as metric_label

#: metrics where a lower value is better (the best of a column is shown in bold)
LOWER_IS_BETTER = {"t60_rel_err"}

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; margin-top: 1.5em; }
h3 { font-size: 1.05em; margin: 1.5em 0 0.3em; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; vertical-align: middle; }
th { background: #f3f3f3; text-align: left; }
table.utt th { position: sticky; top: 0; z-index: 1; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.input td { background: #fff7e6; } tr.reference td { background: #eef6ee; }
audio { width: 240px; height: 32px; display: block; }
img.spec { width: 360px; height: 90px; display: block; }
.src { font-size: 0.8em; color: #666; }
.missing { color: #b00; font-size: 0.85em; max-width: 600px; }
.note { color: #555; font-size: 0.9em; max-width: 70em; }
nav a { margin-right: 0.8em; }
"""

SCRIPT = """document.addEventListener('play', function (e) {
  document.querySelectorAll('audio').forEach(function (a) { if (a !== e.target) a.pause(); });
}, true);"""


def href(rel_path: str) -> str:
    """A relative link to ``rel_path`` (``/``-separated), quoted (``+`` is kept: Kaldi keys
    such as ``snr+05`` stay readable) and escaped for an attribute."""
    return escape(quote(rel_path, safe="/+"), quote=True)


def page(title: str, body: List[str]) -> str:
    return "\n".join(['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
                      f"<title>{escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
                     + body + [f"<script>{SCRIPT}</script>", "</body>", "</html>", ""])


def index_page(title: str, sets: Sequence[dict], exp_dir: str) -> str:
    """The front page: one line per test set (``name``, ``link``, ``n_systems``: systems
    besides the noisy input, ``n_utts``, ``n_missing``)."""
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="note">Built by <code>python -m avse.bin.listening_page</code> from the score '
            f"directories of <code>{escape(exp_dir)}</code>.</p>", "<ul>"]
    for s in sets:
        missing = f', <span class="missing">{s["n_missing"]} missing outputs</span>' if s["n_missing"] else ""
        n = s["n_systems"]
        systems = f'{n} system{"s" if n != 1 else ""}' if n else "input only"
        body.append(f'<li><a href="{href(s["link"])}">{escape(s["name"])}</a>: {systems}, '
                    f'{s["n_utts"]} utterances{missing}</li>')
    return page(title, body + ["</ul>"])


def _best(rows: List[List[str]], col: int, metric: str) -> Optional[str]:
    vals = []
    for r in rows:
        try:
            vals.append(float(r[col]))
        except ValueError:
            continue
    if len(vals) < 2:
        return None
    best = min(vals) if metric in LOWER_IS_BETTER else max(vals)
    return next(r[col] for r in rows if r[col] != "-" and float(r[col]) == best)


def summary_html(head: List[str], rows: List[List[str]], notes: List[str],
                 metrics: List[str]) -> List[str]:
    """The systems x metrics table (cells as :func:`avse.scoring.entries.summary_table`
    prints them); the best mean of each metric in bold (where two or more are defined)."""
    best = {2 + i: _best(rows, 2 + i, m) for i, m in enumerate(metrics)}
    out = ['<table class="summary">', "<tr>" + "".join(
        f'<th{" class=num" if i else ""}>{escape(h)}</th>' for i, h in enumerate(head)) + "</tr>"]
    for r in rows:
        cells = [f"<td>{escape(r[0])}</td>"]
        for i, c in enumerate(r[1:], 1):
            text = f"<b>{escape(c)}</b>" if best.get(i) is not None and c == best[i] else escape(c)
            cells.append(f'<td class="num">{text}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return out + [f'<p class="note">{escape(n)}</p>' for n in notes]


def _clip_cells(clips: List[dict]) -> List[str]:
    audio, img = [], []
    for c in clips:
        src = f'<span class="src">{escape(c["source"])}</span>' if c["source"] else ""
        if c["problem"]:
            audio.append(f'{src}<div class="missing">missing: {escape(c["problem"])}</div>')
            continue
        audio.append(f'{src}<audio controls preload="metadata" src="{href(c["audio"])}"></audio>')
        img.append(f'<img class="spec" loading="lazy" alt="spectrogram" src="{href(c["img"])}">')
    return ["<td>" + "".join(audio) + "</td>", "<td>" + "".join(img) + "</td>"]


def utterance_html(utt: str, anchor: str, conditions: str, rows: List[dict],
                   metrics: List[str]) -> List[str]:
    """One utterance: a row per input, reference and system, each with its player(s),
    spectrogram(s) and scores of this utterance (``rows``: ``label``, ``kind``, ``clips``
    and ``values``, the formatted scores)."""
    cond = f" <small>({escape(conditions)})</small>" if conditions else ""
    out = [f'<h3 id="{escape(anchor, quote=True)}">{escape(utt)}{cond}</h3>', '<table class="utt">',
           "<tr><th>signal</th><th>audio</th><th>spectrogram</th>"
           + "".join(f'<th class="num">{escape(metric_label(m))}</th>' for m in metrics) + "</tr>"]
    for r in rows:
        vals = "".join(f'<td class="num">{escape(r["values"].get(m, ""))}</td>' for m in metrics)
        out.append(f'<tr class="{r["kind"]}"><td>{escape(r["label"])}</td>'
                   + "".join(_clip_cells(r["clips"])) + vals + "</tr>")
    return out + ["</table>"]


def test_set_page(name: str, summary: List[str], utterances: List[List[str]], toc: List[tuple],
                  problems: List[str], settings: str) -> str:
    """A test set's page: the means table, the list of missing outputs, then every
    selected utterance (``toc``: ``(anchor, text)`` links to them)."""
    body = ['<nav><a href="../index.html">all test sets</a></nav>',
            f"<h1>Test set <code>{escape(name)}</code></h1>", "<h2>Means over the scored utterances</h2>"]
    body += summary
    if problems:
        body += [f'<h2 class="missing">Missing outputs ({len(problems)})</h2>', '<ul class="missing">']
        body += [f"<li>{escape(p)}</li>" for p in problems] + ["</ul>"]
    body += ["<h2>Listen</h2>", f'<p class="note">{escape(settings)}</p>', "<nav>"]
    body += [f'<a href="#{href(a)}">{escape(t)}</a>' for a, t in toc] + ["</nav>"]
    for u in utterances:
        body += u
    return page(f"{name}: listening page", body)
