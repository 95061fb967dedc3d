"""report.html: summary.md as one self-contained page, for a browser.

The page is the summary itself (the verdict first, then the environment, the tables and the
notes), converted by markdown-it-py, with

- every figure the summary links (plots/*.png) embedded as a base64 PNG where the link was,
- every table sortable: a click on a column's heading sorts its rows by that column (numbers
  by the first figure in the cell, text alphabetically; a second click reverses),
- env.json at the end, folded, for the full record of the machine and the versions.

Nothing is fetched: the style and the script are inline, the figures are data: URLs and the
page names no icon, so it opens the same from a mail attachment as from the run folder.

    html = render_html(summary_text, run_dir, env)   # the page as a string
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from markdown_it import MarkdownIt

# `- [name.png](plots/name.png)`, as plots_section writes them
_FIGURE_LINK = re.compile(r"^- \[(?P<name>[^\]]+)\]\((?P<path>[^)\s]+\.png)\)\s*$", re.M)

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       max-width: 1180px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; border-bottom: 2px solid #3b6fb6; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; color: #24497a; }
h3 { font-size: 1.05em; }
code { background: #f1f3f7; padding: 0 .25em; border-radius: 3px; font-size: .92em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .93em; }
th, td { border: 1px solid #d5dae3; padding: .3em .6em; }
th { background: #eef2f8; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
tr:nth-child(even) td { background: #fafbfd; }
img { max-width: 100%; border: 1px solid #e2e6ee; }
details pre { background: #f6f8fb; padding: 1em; overflow: auto; font-size: .85em; }
"""

# Sorts a table by the clicked column: numbers by the first figure of the cell, else text.
SCRIPT = """
(function () {
  function key(cell) {
    var text = cell.textContent.trim();
    var m = text.match(/-?\\d+(?:\\.\\d+)?(?:e-?\\d+)?/i);
    return m ? {n: parseFloat(m[0]), t: text} : {n: null, t: text};
  }
  function compare(a, b) {
    if (a.n !== null && b.n !== null && a.n !== b.n) { return a.n - b.n; }
    if (a.n !== null && b.n === null) { return -1; }
    if (a.n === null && b.n !== null) { return 1; }
    return a.t.localeCompare(b.t);
  }
  document.querySelectorAll("table").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.title = "sort by this column";
      th.addEventListener("click", function () {
        var down = th.getAttribute("aria-sort") === "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", down ? "descending" : "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r, s) {
          var c = compare(key(r.cells[col]), key(s.cells[col]));
          return down ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""


def render_html(summary: str, run_dir: str | Path, env: dict | None = None) -> str:
    """The page for summary.md's text `summary`, its figures read from `run_dir`."""
    run_dir = Path(run_dir)
    title = next(
        (line[2:].strip() for line in summary.splitlines() if line.startswith("# ")), "mlp-bench"
    )
    body = _markdown().render(_embed_figures(summary, run_dir))
    if env:
        body += (
            "<h2>Environment</h2>\n<details><summary>env.json: the machine, the versions and "
            "the sweep, as recorded</summary>\n<pre>"
            + html.escape(json.dumps(env, indent=2, sort_keys=True, default=str))
            + "</pre></details>\n"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{body}<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def _markdown() -> MarkdownIt:
    # CommonMark with GitHub's pipe tables; raw HTML in the text stays text
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _embed_figures(summary: str, run_dir: Path) -> str:
    """Each figure link of the Plots list becomes the figure itself, a data: URL (markdown-it
    passes data:image/png links); a link to a file that is missing stays a link."""

    def figure(match: re.Match) -> str:
        path = run_dir / match["path"]
        if not path.is_file():
            return match[0]
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"\n![{match['name']}](data:image/png;base64,{data})\n\n*{match['name']}*\n"

    return _FIGURE_LINK.sub(figure, summary)
