"""The head of summary.md: which run this is, on what machine, from which command(s), how
far it got, and the settings every cell shares."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from bench.report.markdown import (
    format_seconds,
    format_value,
    format_when,
    label,
    one_line,
    parse_when,
    plural,
)
from bench.report.noise import recorded_warnings
from bench.report.tables import CONFIG_KEYS, equals, first, is_missing, ordered_backends
from bench.store.schema import SETTINGS


def header_section(rows: pd.DataFrame, env: dict, config_keys: Sequence[str]) -> str:
    """Title, machine and versions, command(s), status, the settings every cell shares."""
    name = one_line(env.get("name") or "unnamed run", width=200)
    run_id = env.get("run_id") or first(rows["run_id"])
    title = f"# mlp-bench: {name}"
    if run_id and str(run_id) != str(name):
        title += f" (`{one_line(run_id, width=200)}`)"
    parts = [
        title,
        _env_paragraph(env, rows),
        _commands(env, rows),
        _status_notice(rows, env),
        _warnings_line(env),
        bad_values_line(rows),
        _constants_line(rows, config_keys),
    ]
    return "\n\n".join(p for p in parts if p)


def _warnings_line(env: dict) -> str:
    """The warnings the run recorded in env.json (threads above the cores and the like)."""
    found = recorded_warnings(env)
    if not found:
        return ""
    return "**Warnings recorded by the run:**\n\n" + "\n".join(f"- {w}." for w in found)


def bad_values_line(rows: pd.DataFrame) -> str:
    """The values bench.report.loading left out of the figures (not finite, negative times,
    text in a number's column, absurd magnitudes), named per row."""
    bad = rows.attrs.get("bad_values") or []
    if not bad:
        return ""
    shown = [f"- {one_line(b, width=200)}" for b in bad[:20]]
    more = [f"- and {len(bad) - 20} more"] if len(bad) > 20 else []
    return "**Values left out of the figures** (they cannot be measurements):\n\n" + "\n".join(
        shown + more
    )


def _env_paragraph(env: dict, rows: pd.DataFrame) -> str:
    machine = env.get("machine") or {}
    cpu = machine.get("cpu") or "an unrecorded CPU"
    where = [f"{machine['cores']} cores"] if machine.get("cores") else []
    if machine.get("platform"):
        where.append(str(machine["platform"]))
    parts = [f"Run on {cpu}" + (f" ({', '.join(where)})" if where else "") + "."]
    started, finished = parse_when(env.get("started_at")), parse_when(env.get("finished_at"))
    if started:
        when = f"Started {format_when(started)}"
        if finished:
            try:
                when += f", took {format_seconds((finished - started).total_seconds())}"
            except TypeError:  # one stamp with a time zone, one without
                when += f", finished {format_when(finished)}"
        parts.append(when + ".")
    parts.append(f"Status: **{env.get('status', 'unknown')}**.")
    threads = env.get("threads")
    if isinstance(threads, (list, tuple)):
        threads = ", ".join("default" if t is None else str(t) for t in threads)
    effective = _threads_effective(rows)
    text = f"Threads: {threads if threads is not None else 'library defaults'} requested"
    parts.append(text + (f"; in effect {effective}." if effective else "."))
    versions = [f"Python {env['python']}"] if env.get("python") else []
    names = {"numpy": "NumPy", "torch": "torch", "tensorflow": "TensorFlow", "keras": "Keras"}
    recorded = env.get("versions") or {}
    for key in [*names, *sorted(set(recorded) - set(names))]:
        if recorded.get(key):
            versions.append(f"{names.get(key, key)} {recorded[key]}")
    if versions:
        parts.append("Versions: " + ", ".join(versions) + ".")
    if env.get("blas"):
        parts.append(f"BLAS: {env['blas']}.")
    parts.append(_peaks_sentence(env))
    parts.append(gpu_sentence(env))
    if env.get("git_commit"):
        parts.append(f"Commit `{str(env['git_commit'])[:12]}`.")
    return " ".join(p for p in parts if p)


def _peaks(table) -> str:
    return ", ".join(
        f"{v:.0f} GFLOP/s {k}" for k, v in (table or {}).items() if isinstance(v, (int, float))
    )


def peaks_text(env: dict) -> str:
    """`27 GFLOP/s float32`, or `session 0: 27 GFLOP/s float32; session 1: ...` when a
    resume measured its own peak (each row's roofline then uses its session's)."""
    sessions = [s for s in env.get("sessions") or [] if isinstance(s, dict)]
    per_session = [(s.get("index", i), _session_peaks(s)) for i, s in enumerate(sessions)]
    per_session = [(i, p) for i, p in per_session if p]
    if len(per_session) > 1:
        return "; ".join(f"session {i}: {_peaks(p)}" for i, p in per_session)
    return _peaks(env.get("matmul_gflops"))


def _peaks_sentence(env: dict) -> str:
    """The measured matmul peak; one per session when a resume measured its own."""
    text = peaks_text(env)
    if text.startswith("session"):
        return (
            f"Measured matmul peak, per start and resume of the run ({text}); each row's "
            "roofline uses its own session's peak."
        )
    return f"Measured matmul peak: {text}." if text else ""


def gpu_sentence(env: dict) -> str:
    """The GPUs the run used (env.json's `devices`, as torch or CuPy saw them) and each one's
    measured matmul rate, the roofline's denominator for its cells."""
    found = env.get("devices") or {}
    names = {}
    for library in ("torch", "cupy"):
        view = found.get(library)
        for d in (view.get("devices") or []) if isinstance(view, dict) else []:
            if isinstance(d, dict) and d.get("device"):
                memory = f", {d['memory_mb'] / 1024:.0f} GiB" if d.get("memory_mb") else ""
                names.setdefault(d["device"], f"{d.get('name', 'a GPU')}{memory}")
    rates = {}
    for session in env.get("sessions") or []:
        for device, probes in ((session or {}).get("device_matmul") or {}).items():
            for key, probe in (probes or {}).items():
                if isinstance(probe, dict) and isinstance(probe.get("median"), (int, float)):
                    label = key.replace("+tf32", " with TF32")
                    rates.setdefault(device, {}).setdefault(label, probe["median"])
    if not names and not rates:
        return ""
    parts = []
    for device in sorted(set(names) | set(rates)):
        text = f"{device}: {names.get(device, 'a GPU')}"
        if device in rates:
            measured = ", ".join(f"{v / 1000:.1f} TFLOP/s {k}" for k, v in rates[device].items())
            text += f", matmul peak {measured}"
        parts.append(text)
    return "GPUs: " + "; ".join(parts) + " (each GPU cell's roofline uses its own device's rate)."


def _session_peaks(session: dict) -> dict:
    """{dtype: median GFLOP/s} of a session's probe (the threads setting it ran with)."""
    out = {}
    for by_dtype in (session.get("matmul") or {}).values():
        for dtype, stats in (by_dtype or {}).items():
            if isinstance(stats, dict) and isinstance(stats.get("median"), (int, float)):
                out.setdefault(dtype, stats["median"])
    return out


def _commands(env: dict, rows: pd.DataFrame) -> str:
    """The command that started the run, then each resume's (env.json `sessions`)."""
    command = env.get("command")
    if command and not isinstance(command, str):
        command = " ".join(map(str, command))
    if env.get("source") == "pytest-benchmark":
        return _pbench_commands(command, env.get("converted_by"))
    sessions = [s for s in env.get("sessions") or [] if isinstance(s, dict)]
    resumes = [s for s in sessions[1:] if s.get("command")]
    if not command and sessions:
        command = sessions[0].get("command")
    if not command:
        return ""
    if not resumes:
        return f"Command: `{one_line(command, width=2000)}`"
    lines = [f"Command: `{one_line(command, width=2000)}`, resumed {plural(len(resumes), 'time')}:"]
    counts = rows["session"].value_counts(dropna=True) if "session" in rows else pd.Series()
    for s in resumes:
        index = s.get("index")
        done = int(counts.get(index, 0)) if index is not None else 0
        when = parse_when(s.get("started_at"))
        lines.append(
            f"- `{one_line(s['command'], width=2000)}`"
            + (f" at {format_when(when)}" if when else "")
            + (f" ({plural(done, 'row')})" if index is not None and len(counts) else "")
        )
    return "\n".join(lines)


def _pbench_commands(measured, converted) -> str:
    if measured:
        text = f"Measured with: `{one_line(measured, width=2000)}`"
    else:
        text = "Measured by pytest-benchmark (its JSON does not record the command line)"
    if converted:
        text += f"; converted with: `{one_line(converted, width=2000)}`"
    return text


def _threads_effective(rows: pd.DataFrame) -> str:
    """What each backend's worker reported, e.g. `numpy-vec: blas 4; torch: torch 4`."""
    if "threads_effective" not in rows.columns:
        return ""
    out = []
    for backend in ordered_backends(rows["backend"]):
        seen = []
        for raw in rows.loc[equals(rows["backend"], backend), "threads_effective"].dropna():
            text = _describe_threads(raw)
            if text and text not in seen:
                seen.append(text)
        if seen:
            out.append(f"{backend}: {' / '.join(seen)}")
    return "; ".join(out)


def _describe_threads(raw) -> str:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return str(raw)
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def planned_cells(env: dict) -> int | None:
    """How many cells x repeats the run's sweep holds (env.json `cells`), if recorded."""
    value = env.get("cells")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def not_run_sentence(rows: pd.DataFrame, env: dict) -> str:
    """` 3 of 12 cells (cells × repeats) did not run.` when the run stopped early: env.json's
    `cells_not_run` where the run recorded it, else its `cells` less the rows written."""
    planned = planned_cells(env)
    missing = env.get("cells_not_run")
    if not isinstance(missing, int) or isinstance(missing, bool):
        missing = None if planned is None else planned - len(rows)
    if not missing or missing <= 0:
        return ""
    of = f" of {planned}" if planned is not None else ""
    return f" {missing}{of} cells (cells × repeats) did not run."


def _status_notice(rows: pd.DataFrame, env: dict) -> str:
    status = env.get("status")
    not_run = not_run_sentence(rows, env)
    if status == "complete":
        return f"> **Not every cell ran.**{not_run}" if not_run else ""
    if status == "interrupted":
        return (
            f"> **This run was interrupted.**{not_run} The tables cover the "
            f"{plural(len(rows), 'cell')} that finished before it stopped; resuming the "
            "run folder (`python -m bench run --resume RUN_DIR`) runs the rest."
        )
    if status == "running":
        return (
            "> **This run had not finished** when this summary was made (or it stopped without "
            f"recording its end).{not_run} The tables cover the cells finished so far."
        )
    status = status or "not recorded"
    return f"> **Run status: {status}.**{not_run} The tables may not cover the whole sweep."


def _constants_line(rows: pd.DataFrame, config_keys: Sequence[str]) -> str:
    if rows.empty:
        return ""
    fixed = []
    for col in (*CONFIG_KEYS, *SETTINGS[1:], "target_acc"):
        if col in config_keys or col not in rows.columns:
            continue
        values = rows[col]
        if values.nunique(dropna=False) != 1:
            continue
        value = values.iloc[0]
        if is_missing(value) and col not in ("threads",):
            continue
        fixed.append(f"{label(col)} {format_value(col, value)}")
    line = f"Backends: {', '.join(ordered_backends(rows['backend']))}."
    if fixed:
        line += " The same in every cell: " + " · ".join(fixed) + "."
    return line
