"""report.html: written beside summary.md, self-contained, and it renders in a real browser.

The browser checks open the page in headless Chromium (Debian's `chromium`; skipped with a
message where none is installed): no console message, every table and figure of the summary
there (the figures decoded), the sort script run, and a screenshot that is not one colour.
"""

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import run_bench
from test_report import write_run

from bench import cli
from bench.report import write as report
from bench.report.html import render_html

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no headless Chromium: install Debian's chromium (apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """A run folder with its report written, figures and all."""
    run_dir = write_run(tmp_path_factory.mktemp("html") / "run")
    files = report.write_report(run_dir, plots=True)
    return run_dir, files


def _chromium(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # root in CI containers
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _console(stderr: str) -> list[str]:
    """The page's console messages, as Chromium logs them (`INFO:CONSOLE:1] "..."`)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_the_report_is_written_beside_the_summary(reported):
    run_dir, files = reported
    page = run_dir / "report.html"
    assert files[0] == run_dir / "summary.md" and files[-1] == page
    text = page.read_text(encoding="utf-8")
    summary = (run_dir / "summary.md").read_text(encoding="utf-8")
    pngs = sorted((run_dir / "plots").glob("*.png"))
    assert pngs and text.count("data:image/png;base64,") == len(pngs)
    assert text.count("<table>") == summary.count("\n|:")  # every table of the summary
    # the verdict comes before the environment, as in summary.md
    assert text.index("<h2>Verdict</h2>") < text.index("Run on ") < text.index("<h2>Environment")


def test_the_report_fetches_nothing(reported):
    text = (reported[0] / "report.html").read_text(encoding="utf-8")
    fetched = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", text)
    assert fetched  # the pattern sees the figures and the icon
    assert [u for u in fetched if not u.startswith("data:")] == []
    assert "@import" not in text and "url(" not in text and "fetch(" not in text


def test_bench_report_names_the_page(reported, capsys, monkeypatch):
    monkeypatch.setenv(report.SKIP_PLOTS_ENV, "0")  # the page comes with the figures
    run_dir, _ = reported
    assert cli.main(["report", str(run_dir)]) == 0
    assert str(run_dir / "report.html") in capsys.readouterr().out.splitlines()


def test_bench_run_writes_the_page(tmp_path):
    done = run_bench(
        "run",
        *("--backends", "numpy-vec", "--batch-sizes", "32", "--losses", "cce", "--epochs", "2"),
        *("--quiet", "--out", str(tmp_path)),
        env={report.SKIP_PLOTS_ENV: "0"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<h2>Verdict</h2>" in page and "data:image/png;base64," in page


def test_a_missing_figure_stays_a_link(tmp_path):
    text = "# mlp-bench: x\n\n## Plots\n\n- [gone.png](plots/gone.png)\n"
    page = render_html(text, tmp_path)
    assert '<a href="plots/gone.png">gone.png</a>' in page and "base64" not in page


@needs_chromium
def test_the_report_renders_in_chromium(reported, tmp_path):
    run_dir, _ = reported
    page = run_dir / "report.html"
    html_text = page.read_text(encoding="utf-8")
    # a copy that writes what the browser sees into the DOM: figures decoded, tables, the
    # sort script's work (it titles every heading)
    probe = tmp_path / "probe.html"
    probe.write_text(
        html_text.replace(
            "</body>",
            "<script>window.addEventListener('load', function () {"
            "var imgs = Array.prototype.slice.call(document.images);"
            "var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });"
            "var heads = document.querySelectorAll('th[title]').length;"
            "document.body.setAttribute('data-probe', imgs.length + '/' + ok.length + '/' +"
            " document.querySelectorAll('table').length + '/' + heads);"
            "});</script></body>",
        ),
        encoding="utf-8",
    )
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-probe="(\d+)/(\d+)/(\d+)/(\d+)"', dom.stdout)
    assert found, "the probe did not run: " + dom.stdout[:500]
    images, decoded, tables, sortable = map(int, found.groups())
    pngs = len(list((run_dir / "plots").glob("*.png")))
    assert images == decoded == pngs > 0
    assert tables == html_text.count("<table>") > 0 and sortable >= tables
    # the page itself, untouched: no console message (an error, a failed load, a log)
    shot = tmp_path / "shot.png"
    shown = _chromium("--window-size=1200,1600", f"--screenshot={shot}", page.as_uri())
    assert shown.returncode == 0 and shot.is_file(), shown.stderr[-2000:]
    assert _console(shown.stderr) == []
    from PIL import Image

    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 10, "the screenshot is blank"


@needs_chromium
def test_the_console_check_sees_an_error(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    shown = _chromium("--dump-dom", bad.as_uri())
    assert any("undefinedFunction" in line for line in _console(shown.stderr))
