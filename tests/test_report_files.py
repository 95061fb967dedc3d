"""Writing a report into a run folder: summary.md before the figures, interrupts and SIGTERM
while drawing, folders that cannot be written, the switch that skips figures, and report time
that stays bounded as a sweep grows."""

import errno
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from test_report import ENV, make_tables, result_row, write_run

from bench import cli
from bench.report import loading, plots, summary
from bench.report import write as report


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path / "run")


def _interrupt_after(monkeypatch, n, action):
    """Make the (n+1)-th figure save run `action` instead of saving."""
    real, calls = plots.save_figure, []

    def save(fig, path):
        calls.append(path)
        if len(calls) > n:
            action()
        return real(fig, path)

    monkeypatch.setattr(plots, "save_figure", save)


def _raise_interrupt():
    raise KeyboardInterrupt


def test_an_interrupt_while_drawing_keeps_summary_and_says_how_to_finish(run_dir, monkeypatch):
    _interrupt_after(monkeypatch, 2, _raise_interrupt)
    told = []
    with pytest.raises(KeyboardInterrupt):
        report.write_report(run_dir, plots=True, note=told.append)
    text = (run_dir / "summary.md").read_text()
    assert "## Verdict" in text and "## Failed cells" in text
    assert "Drawing the figures was interrupted after 2 of" in text
    assert f"`python -m bench report {run_dir}`" in text
    assert len(list((run_dir / "plots").glob("*.png"))) == 2
    assert told and f"finish the figures with: python -m bench report {run_dir}" in told[0]
    assert not list(run_dir.glob("*.tmp"))
    # finishing: the same command draws them all and the note goes
    monkeypatch.undo()
    files = report.write_report(run_dir, plots=True)
    text = (run_dir / "summary.md").read_text()
    assert "interrupted" not in text and len(files) == 8 and "](plots/" in text


@pytest.mark.skipif(
    signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, reason="SIGTERM handled here"
)
def test_sigterm_while_drawing_leaves_summary_and_restores_the_handler(run_dir, monkeypatch):
    _interrupt_after(monkeypatch, 1, lambda: os.kill(os.getpid(), signal.SIGTERM))
    told = []
    with pytest.raises(KeyboardInterrupt):
        report.write_report(run_dir, plots=True, note=told.append)
    assert "interrupted after 1 of" in (run_dir / "summary.md").read_text()
    assert told and "python -m bench report" in told[0]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_summary_is_written_before_the_figures(run_dir, monkeypatch):
    seen = []
    _interrupt_after(monkeypatch, 0, lambda: seen.append((run_dir / "summary.md").read_text()))
    report.write_report(run_dir, plots=True)
    assert seen and "## Verdict" in seen[0] and "The figures are being drawn" in seen[0]
    assert "being drawn" not in (run_dir / "summary.md").read_text()


def test_skip_plots_switch(run_dir, monkeypatch):
    monkeypatch.setenv(report.SKIP_PLOTS_ENV, "1")
    assert report.write_report(run_dir) == [run_dir / "summary.md"]
    assert not (run_dir / "plots").exists()
    assert "## Plots" not in (run_dir / "summary.md").read_text()
    monkeypatch.setenv(report.SKIP_PLOTS_ENV, "0")
    assert report.write_report(run_dir, plots=False) == [run_dir / "summary.md"]
    assert report.plots_wanted(None) is True


def _refuse(exc_errno):
    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.endswith(".tmp"):
            raise OSError(exc_errno, os.strerror(exc_errno), str(self))
        return real(self, *args, **kwargs)

    return write_text


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.EROFS, "the folder is not writable"),
        (errno.EACCES, "the folder is not writable"),
        (errno.ENOSPC, "the disk is full"),
    ],
)
def test_a_folder_that_cannot_be_written_is_a_clear_error(
    run_dir, monkeypatch, capsys, code, words
):
    monkeypatch.setattr(Path, "write_text", _refuse(code))
    with pytest.raises(report.ReportError, match=words):
        report.write_report(run_dir, plots=False)
    status = cli.main(["report", str(run_dir)])
    err = capsys.readouterr()
    assert status == 1 and err.out == ""  # nothing announced as written
    lines = err.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write summary.md into {run_dir}")
    assert words in lines[0] and f"python -m bench report {run_dir}" in lines[0]
    assert "OSError" not in lines[0]
    assert not (run_dir / "summary.md").exists() and not list(run_dir.glob("*.tmp"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_run_folder(run_dir, capsys):
    run_dir.chmod(0o555)
    try:
        assert cli.main(["report", str(run_dir)]) == 1
    finally:
        run_dir.chmod(0o755)
    assert "is not writable" in capsys.readouterr().err


def _many_configs(n_lrs):
    rows = []
    for i in range(n_lrs):
        for backend in ("numpy-vec", "torch"):
            row = result_row("digits", backend, 32, 0, (0.01 if backend == "torch" else 0.02, 0.9))
            row.update(lr=0.001 * (i + 1), cell_id=f"{backend}|{i}")
            rows.append(row)
    return pd.DataFrame(rows)


def test_plots_past_the_limit_pool_the_widest_axis_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "MAX_GROUPS", 4)
    results, curves = make_tables()
    many = _many_configs(30)
    folder = write_run(tmp_path / "many", many, curves.iloc[:0])
    files = report.write_report(folder, plots=True)
    pngs = [p.name for p in files[1:-1]]  # the last is report.html
    assert pngs == ["throughput-digits.png"]  # one group: lr pooled, no curves recorded
    text = (folder / "summary.md").read_text()
    assert "more than 4 configurations to draw, so the figures pool lr (30 values)" in text
    drawing = plots.PlotSet(loading.load_run(folder)[0], curves, tmp_path / "p", max_groups=100)
    assert drawing.pooled == [] and drawing.planned == 30 * 3


def test_many_configurations_make_one_table_and_stay_fast():
    results = loading.typed(_many_configs(1000).astype(str).replace({"None": "", "nan": ""}))
    started = time.perf_counter()
    text = summary.render_summary(results, None, ENV)
    took = time.perf_counter() - started
    # one row per configuration and backend in a single table, no sub-section per lr
    assert "1000 configurations, one row each:" in text and "### lr" not in text
    section = text.split("## digits · loss cce", 1)[1].split("\n## ", 1)[0]
    assert sum(ln.startswith("| 0.") or ln.startswith("| 1") for ln in section.splitlines()) == 2000
    # linear work: about 2 s here; quadratic lookups took minutes at this size
    assert took < 30, took
    few = loading.typed(_many_configs(3).astype(str).replace({"None": "", "nan": ""}))
    assert "### lr 0.001" in summary.render_summary(few, None, ENV)
