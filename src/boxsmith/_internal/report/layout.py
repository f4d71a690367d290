"""The frame of every page of the site: the HTML shell, its style sheet and the catalog's filter
script, written beside the pages (`assets/`) so that the site needs no network and works from
`file://` as from GitHub Pages. The layout is CSS only: one column at a phone's width, a grid of
cards at a desktop's; wide tables and code scroll inside their box, never the page."""

from __future__ import annotations

import html

__all__ = ["ASSETS", "esc", "page"]

CSS = """\
:root { --fg: #1d232b; --muted: #5b6572; --line: #d8dee6; --bg: #f6f8fa; --card: #fff;
  --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 12px 16px; }
header h1 { margin: 8px 0 4px; font-size: 1.5rem; }
header p, footer { color: var(--muted); font-size: .9rem; }
a { color: var(--accent); }
h2 { font-size: 1.15rem; margin: 24px 0 8px; }
.filter { margin: 8px 0 16px; }
.filter input { width: 100%; max-width: 420px; padding: 8px 10px; font: inherit;
  border: 1px solid var(--line); border-radius: 6px; }
.cards { display: grid; gap: 12px; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; min-width: 0; overflow-wrap: anywhere; }
.card h2 { margin: 0 0 4px; font-size: 1.1rem; }
.card p { margin: 4px 0 8px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0;
  font-size: .9rem; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; min-width: 0; }
.label { display: inline-block; padding: 0 6px; margin: 0 4px 4px 0; border-radius: 10px;
  background: #e7eef7; font-size: .8rem; }
.state { font-weight: 600; }
.state.ok { color: var(--ok); } .state.bad { color: var(--bad); }
.state.warn { color: var(--warn); }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; background: var(--card); font-size: .9rem; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.charts figure { margin: 0; flex: 1 1 300px; max-width: 480px; background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
.chart { width: 100%; height: auto; font-size: 10px; }
.chart .bar { fill: var(--accent); } .chart .axis { stroke: var(--line); }
.chart text { fill: var(--fg); }
pre { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px;
  overflow-x: auto; font-size: .82rem; line-height: 1.4; }
.shot { max-width: 100%; height: auto; border: 1px solid var(--line); }
.t-c { color: #6e7781; font-style: italic; } .t-k, .t-i, .t-h { color: #0550ae; font-weight: 600; }
.t-s { color: #0a3069; } .t-n, .t-b { color: #953800; } .t-v, .t-f { color: #8250df; }
.t-p { color: #6e7781; }
"""

FILTER_JS = """\
// The catalog's filter: hides the cards whose name and labels do not contain every word typed.
// Without this script the box stays hidden and every card shows.
(function () {
  var form = document.querySelector(".filter");
  var box = document.getElementById("filter");
  if (!form || !box) { return; }
  form.hidden = false;
  var cards = document.querySelectorAll(".card[data-search]");
  box.addEventListener("input", function () {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    cards.forEach(function (card) {
      var text = card.getAttribute("data-search");
      card.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
    });
  });
})();
"""

ASSETS = {"assets/site.css": CSS, "assets/filter.js": FILTER_JS}
"""The files every site holds beside its pages."""


def esc(value: object) -> str:
    """Text (or anything shown as text) escaped for HTML content and quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, depth: int = 0, script: bool = False) -> str:
    """A whole HTML page; `depth`: how many folders below the site's top it lives."""
    up = "../" * depth
    tail = f'<script src="{up}assets/filter.js"></script>\n' if script else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="boxsmith report">\n'
        f"<title>{esc(title)}</title>\n"
        f'<link rel="stylesheet" href="{up}assets/site.css">\n'
        f"</head>\n<body>\n{body}\n{tail}</body>\n</html>\n"
    )
