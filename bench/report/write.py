"""`python -m bench report RUN_DIR`: summary.md, the figures and report.html, written into a
run folder.

The jobs live in their own modules, imports running one way:

    bench.store.schema      column names and types
    bench.report.loading    reading and typing the run tables                (schema)
    bench.report.tables     selecting and summarising them                   (schema)
    bench.report.markdown   values and tables as text                        (tables)
    bench.report.verdict    the generated verdict                            (tables, markdown)
    bench.report.summary    summary.md, from one view of the run (view); its sections
                            in header, hosts, verdict and sections   (tables, markdown, verdict)
    bench.report.plots      the PNG figures, drawn by curve_plots and speed_plots with the
                            style of drawing                                 (tables, markdown)
    bench.report.html       report.html: summary.md and its figures as one self-contained page
    bench.report.write      writing them into a run folder                   (all of the above)

summary.md is written first, so an interrupt while the figures are drawn keeps it; it is
rewritten with the list of figures once they are drawn, and report.html is written from it
(with the figures: a run reported without them, MLP_BENCH_NO_PLOTS=1, has summary.md alone).

    results, curves = load_run("results/2025-01-05-digits")  # bench.report.loading
    print(render_summary(results, curves, load_env("results/2025-01-05-digits")))
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from bench.errors import BenchError
from bench.report import plots as plotting
from bench.report.html import render_html
from bench.report.loading import load_env, load_run
from bench.report.plugins import display_names
from bench.report.summary import render_summary

# Set to 1 to write summary.md without figures (tests that do not look at figures use it).
SKIP_PLOTS_ENV = "MLP_BENCH_NO_PLOTS"


class ReportError(BenchError):
    """The report could not be written (e.g. a read-only folder or a full disk)."""


def plots_wanted(plots: bool | None) -> bool:
    """`plots` when given, else True unless MLP_BENCH_NO_PLOTS is set to a true value."""
    if plots is not None:
        return plots
    return os.environ.get(SKIP_PLOTS_ENV, "").strip().lower() not in ("1", "true", "yes")


def write_report(
    run_dir: str | Path, *, plots: bool | None = None, note: Callable[[str], None] | None = None
) -> list[Path]:
    """Write summary.md, then plots/*.png and report.html, into a run folder; return the
    files written (in that order).

    Raises ReportError when the folder cannot be written. An interrupt (KeyboardInterrupt,
    or SIGTERM when this runs in the main thread with SIGTERM's default handler) tells `note`
    (stderr by default) what is on disk and how to finish, and propagates as
    KeyboardInterrupt: while the figures are drawn, summary.md stays in place with a note
    saying the same.
    """
    note = note or (lambda text: print(text, file=sys.stderr))
    with _sigterm_raises():
        return _write_report(Path(run_dir), plots_wanted(plots), note)


def _write_report(run_dir: Path, draw: bool, note) -> list[Path]:
    results, curves, env = display_names(*load_run(run_dir), load_env(run_dir))
    summary = run_dir / "summary.md"
    finish = f"python -m bench report {run_dir}"
    drawing_note = f"The figures are being drawn; if this note stays, draw them with `{finish}`."
    try:
        write_text(
            summary, render_summary(results, curves, env, plots_note=drawing_note if draw else "")
        )
    except KeyboardInterrupt:
        note(f"report interrupted before {summary} was written; write it with: {finish}")
        raise
    if not draw:
        return [summary]
    drawing = plotting.PlotSet(results, curves, run_dir / "plots")
    try:
        images = drawing.write()
    except KeyboardInterrupt:
        done = _relative(drawing.written, run_dir)
        write_text(
            summary,
            render_summary(
                results,
                curves,
                env,
                plots=done,
                plots_note=f"Drawing the figures was interrupted after {len(done)} of "
                f"{drawing.planned}; draw them all with `{finish}`.",
            ),
        )
        note(
            f"report interrupted while drawing figures: {summary} is written; "
            f"finish the figures with: {finish}"
        )
        raise
    except OSError as exc:
        raise write_error("the figures", run_dir, exc) from None
    text = render_summary(
        results, curves, env, plots=_relative(images, run_dir), plots_note=drawing.note
    )
    write_text(summary, text)
    page = run_dir / "report.html"
    write_text(page, render_html(text, run_dir, env))
    return [summary, *images, page]


def _relative(paths, run_dir: Path) -> list[Path]:
    return [p.relative_to(run_dir) for p in paths]


def write_text(path: Path, text: str, retry: str | None = None) -> None:
    """Write `path` whole or not at all (a temporary file renamed over it); a ReportError
    that says why and what to do when it cannot be written."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise write_error(path.name, path.parent, exc, retry) from None


def write_error(what: str, run_dir: Path, exc: OSError, retry: str | None = None) -> ReportError:
    """A one-line ReportError for an OSError met while writing `what` into `run_dir`."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = f"the folder is not writable ({exc.strerror})"
        fix = "make it writable (or copy the run folder somewhere writable)"
    elif exc.errno == errno.ENOSPC:
        why = "the disk is full"
        fix = "free some space"
    else:
        why = exc.strerror or str(exc)
        fix = "fix that"
    retry = retry or f"python -m bench report {run_dir}"
    return ReportError(f"cannot write {what} into {run_dir}: {why}; {fix}, then run `{retry}`")


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises KeyboardInterrupt meanwhile, where this process has not set its own
    handler (bench run's does) and signals can be handled (the main thread)."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
