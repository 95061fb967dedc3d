"""Is a run's timing trustworthy? The thresholds, and a plain-words assessment of a run.

A benchmark that cannot tell signal from noise is not one. Three things are recorded while a
run goes (see bench.run.runner and bench.worker.measure) and judged here:

- each cell's `epoch_s_spread`, the relative spread (p75 - p25) / median of its steady-state
  epoch times; a cell above NOISY_SPREAD (bench.store.records) is `noisy`;
- the matmul probe (the roofline's denominator), several repetitions per thread count and
  dtype; a probe whose spread is above PROBE_NOISY_SPREAD (bench.store.records) is flagged;
- the machine's load at the start and end of each session (start or resume), and the CPU
  time other processes took while it ran.

`assess(env, results)` turns those into `Assessment(reliable, reasons, advice, noisy_cells)`,
shown by the console at the end of a run and by summary.md. A quiet run has no reasons and
shows no warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.report.markdown import format_seconds
from bench.store.records import NOISY_SPREAD

# The machine is called busy when, during a session, other processes took on average at
# least half a core (OTHER_CORES_BUSY), or when the 1-minute load average at its start was
# at least half the cores and at least 1 (so one other busy program on a 2-core machine).
OTHER_CORES_BUSY = 0.5
START_LOAD_BUSY = 0.5

OPEN_SHOWN = 4  # open comparisons named in the warning (noise_warning); the rest are counted

ADVICE_QUIET = "rerun on a quiet machine (close other programs, wait for builds and tests)"
ADVICE_THREADS = "use --threads 1, which other work disturbs least"
ADVICE_REPEATS = "add --repeats 3 (or more epochs) to see how much the figures move"
ADVICE_LONGER = (
    "give the noisy cells more timing epochs (a larger --timing-budget, or more --epochs) or "
    "more work per epoch (more samples or a larger model): on a quiet machine, epochs of a "
    "few milliseconds still move by the system's own interruptions"
)


@dataclass
class Assessment:
    reliable: bool = True
    reasons: list[str] = field(default_factory=list)
    advice: str = ""
    noisy_cells: set = field(default_factory=set)

    def lines(self) -> list[str]:
        """The console's words: nothing for a reliable run."""
        if self.reliable:
            return []
        out = ["warning: these timings are unreliable:"]
        out += [f"  - {reason}" for reason in self.reasons]
        out.append(f"  what to do: {self.advice}")
        return out


def load_busy(load: dict | None, wall_s: float | None) -> bool | None:
    """Whether a session's load record (as in env.json's sessions[].load) says the machine
    was busy; None when nothing was recorded."""
    if not load:
        return None
    # The CPU time other processes took during the session is the direct measure; the load
    # average at the start is a guess from the minute before (it stays high for a minute after
    # a build ends, and called a run busy whose neighbours took 0.01 cores), used without it.
    other = load.get("other_cpu_s")
    if other is not None and wall_s:
        return other / wall_s >= OTHER_CORES_BUSY
    start = load.get("start") or {}
    loadavg, cores = start.get("loadavg"), start.get("cpu_count") or 1
    if loadavg:
        return loadavg[0] >= max(1.0, START_LOAD_BUSY * cores)
    return None


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    try:
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):
        return False


def _busy_reasons(env: dict) -> list[str]:
    reasons = []
    sessions = env.get("sessions") or []
    for session in sessions:
        load = session.get("load") or {}
        if not load.get("busy"):
            continue
        which = "" if len(sessions) == 1 else f" (session {session.get('index')})"
        start = load.get("start") or {}
        bits = []
        if start.get("loadavg"):
            bits.append(
                f"load average {start['loadavg'][0]:.1f} on {start.get('cpu_count')} "
                "cores at the start"
            )
        if load.get("other_cores") is not None:
            bits.append(f"other processes used {load['other_cores']:.1f} cores on average")
        reasons.append(f"the machine was busy{which}: " + ", ".join(bits))
    return reasons


def recorded_warnings(env: dict) -> list[str]:
    """The warnings each session recorded in env.json (threads above the cores and the
    like), once each."""
    out: list[str] = []
    for session in env.get("sessions") or []:
        if not isinstance(session, dict):
            continue
        for text in session.get("warnings") or []:
            text = " ".join(str(text).split()).removeprefix("warning: ").rstrip(".")
            if text and text not in out:
                out.append(text)
    return out


def _probe_reasons(env: dict) -> list[str]:
    reasons = []
    for session in env.get("sessions") or []:
        for threads, by_dtype in (session.get("matmul") or {}).items():
            for dtype, probe in by_dtype.items():
                if isinstance(probe, dict) and probe.get("noisy"):
                    reasons.append(
                        f"the matmul probe ({dtype}, {threads} thread"
                        f"{'' if str(threads) == '1' else 's'}) varied "
                        f"{100 * probe['spread']:.0f}% between repetitions "
                        f"({probe['min']:.3g}-{probe['max']:.3g} GFLOP/s), so the roofline "
                        "column is uncertain"
                    )
    return reasons


def noisy_cells(results) -> set:
    """(cell_id, repeat) of the rows flagged noisy."""
    if results is None or len(results) == 0 or "noisy" not in results:
        return set()
    flagged = results[results["noisy"].map(_truthy)]
    return {(str(c), int(r)) for c, r in zip(flagged["cell_id"], flagged["repeat"])}


def _epoch_range(results, cells) -> str:
    """', epochs of A-B ms' for the noisy cells' steady epochs, or '' where not recorded."""
    if "epoch_s" not in results:
        return ""
    keys = [(str(c), int(r)) for c, r in zip(results["cell_id"], results["repeat"])]
    times = [
        float(t) for key, t in zip(keys, results["epoch_s"]) if key in cells and math.isfinite(t)
    ]
    if not times:
        return ""
    lo, hi = format_seconds(min(times)), format_seconds(max(times))
    return f"; their steady epochs take {lo if lo == hi else f'{lo} to {hi}'}"


def _unmeasured(results, precise: set) -> tuple[int, int] | None:
    """(ok cells whose spread could not be measured, ok cells), or None when every ok cell's
    was: a spread needs 3 steady epochs, so 1-3 epoch runs are timed without a noise figure."""
    if results is None or len(results) == 0 or "epoch_s_spread" not in results:
        return None
    ok = results[results["status"].astype(str) == "ok"] if "status" in results else results
    if "epochs_run" in ok:
        ok = ok[ok["epochs_run"].notna()]
    spreads = ok["epoch_s_spread"].astype(float)
    imprecise = ~ok["cell_id"].astype(str).isin(precise)  # known precisely all the same
    missing = int((spreads.isna() & imprecise).sum())
    return (missing, len(ok)) if missing else None


def assess(env: dict, results, precise: set | None = None) -> Assessment:
    """How far a run's timings can be trusted, in plain words (see the module's docstring).

    `env` is the run's env.json, `results` its results table (a pandas DataFrame). Cells whose
    cell_id is in `precise` (their median time is known to within the precision the report
    states, bench.precision.PRECISION) are not counted noisy for their spread alone.
    """
    reasons = _busy_reasons(env or {})
    busy = bool(reasons)
    cells = {c for c in noisy_cells(results) if c[0] not in (precise or set())}
    if cells:
        timed = results
        if "status" in results:
            timed = results[results["status"].astype(str) == "ok"]
        reasons.append(
            f"{len(cells)} of {len(timed)} cells are noisy (their epoch times spread more "
            f"than {100 * NOISY_SPREAD:.0f}% around the median{_epoch_range(results, cells)})"
        )
    unmeasured = _unmeasured(results, precise or set())
    if unmeasured:
        reasons.append(
            f"{unmeasured[0]} of {unmeasured[1]} cells ran fewer than 3 steady epochs (epochs "
            "2..E), too few to measure how much their times move"
        )
    probe = _probe_reasons(env or {})
    reasons += probe
    if not reasons:
        return Assessment()
    advice = []
    if busy or probe:
        advice.append(ADVICE_QUIET)
    elif cells:  # a quiet machine and a steady probe: the cells themselves are too short
        advice.append(ADVICE_LONGER)
    if unmeasured:
        advice.append("run 4 epochs or more, so that each cell's spread can be measured")
    threads = results["threads"] if results is not None and "threads" in results else []
    if any(int(t) > 1 for t in threads if str(t).isdigit()):
        advice.append(ADVICE_THREADS)
    advice.append(ADVICE_REPEATS)
    advice_text = "; ".join(advice) + "."
    return Assessment(False, reasons, advice_text[0].upper() + advice_text[1:], cells)


def noise_warning(
    env: dict, rows, settled: set | None = None, still_open: list | None = None
) -> str:
    """A plain warning when `assess` judges the run's figures unreliable; "" otherwise. `rows`
    is the results table (a pandas DataFrame).
    Cells in `settled` (cell_ids whose median is known within the stated precision, or whose
    every comparison its interval settles) are not called noisy for the spread of their epochs
    alone; `still_open` names the comparisons whose intervals are too wide to settle."""
    if rows.empty:
        return ""
    result = assess(env, rows, precise=settled)
    if result.reliable:
        return ""
    reasons = [r.rstrip(".") for r in result.reasons]
    if result.noisy_cells and still_open:
        shown = still_open[:OPEN_SHOWN]
        more = len(still_open) - len(shown)
        reasons.append(
            "the comparisons whose intervals are too wide to say which is faster: "
            + ", ".join(shown)
            + (f" and {more} more (the table below)" if more > 0 else "")
        )
    reasons = "; ".join(reasons)
    text = "**These figures are unreliable**" + (f": {reasons}." if reasons else ".")
    advice = (result.advice or "").strip()
    return text + (f" {advice}" if advice else "")
