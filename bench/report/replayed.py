"""What `bench replay` measured, in the verdict's words (the record: bench.run.replay).

Where backends part in accuracy, the verdict used to say that rounding grows over many steps:
a claim. With a replay record in env.json (`replay`) it says what the float64 replay of the
first epochs found, with the figures; without one, it names the command that measures it.
"""

from __future__ import annotations

from bench.report.markdown import plural
from bench.report.plugins import parity_clause, short_name

REPLAY_COMMAND = "`python -m bench replay` on this run folder"


def replay_sentence(env: dict) -> str | None:
    """The verdict's clause for the run's replay record; None when the run has none."""
    record = env.get("replay")
    if not isinstance(record, dict) or not isinstance(record.get("columns"), list):
        return None
    epochs = record.get("epochs")
    first = f"the first {plural(int(epochs), 'epoch')}" if isinstance(epochs, int) else "them"
    columns = [c for c in record["columns"] if isinstance(c, dict)]
    by_verdict: dict[str, list[dict]] = {}
    for column in columns:
        by_verdict.setdefault(str(column.get("verdict")), []).append(column)
    clauses = []
    if "real difference" in by_verdict:
        parts = _float64_gaps(by_verdict["real difference"], with_control=False)
        clauses.append(
            f"replayed in float64 for {first}, they still part ({'; '.join(parts)}): a real "
            "difference in what they compute, not rounding (`python -m bench verify "
            "--backends NAME` shows where)"
        )
    if "apart in float64" in by_verdict:
        parts = _float64_gaps(by_verdict["apart in float64"], with_control=True)
        clauses.append(
            f"replayed in float64 for {first}, they part there too ({'; '.join(parts)}); where "
            "numpy-loop and numpy-vec (the same maths in another order) part as well, these "
            "dynamics grow even float64 rounding that far, so the replay cannot tell rounding "
            "from a real difference; without that pair in the run there is no control to judge by"
        )
    if "rounding" in by_verdict:
        own = _worst(by_verdict["rounding"], own=True)
        in64 = _worst(by_verdict["rounding"], own=False)
        clauses.append(
            f"replayed for {first} (`bench replay`), their losses part by up to {_g(own)} in "
            f"the run's dtype and agree within {_g(in64)} in float64: the same maths, float32 "
            "rounding grown over many steps into different, equally trained weights"
        )
    if "not yet apart" in by_verdict:
        clauses.append(
            f"replayed for {first}, they still agree in both dtypes: the gap opens later "
            "(`bench replay --epochs N` replays more)"
        )
    if "not replayed" in by_verdict:
        missing = sorted({m for c in by_verdict["not replayed"] for m in c.get("missing") or []})
        names = ", ".join(short_name(m) for m in missing) or "the backends"
        clauses.append(f"not replayed in float64 ({names} did not run in float64)")
    return "; ".join(clauses) if clauses else None


def parting_cause(env: dict, unchecked: list[str], parity_text: str) -> str:
    """Why backends part, for the verdict: what `bench replay` measured, and, for users'
    backends `bench verify` never checked, that they were not; without a replay, where to
    measure it. `parity_text`: what verify measured for the built-in backends."""
    clauses = [f"{short_name(b)} {parity_clause(env, b)}" for b in unchecked]
    replayed = replay_sentence(env)
    if replayed:
        return "; ".join([replayed, *clauses])
    if not clauses:  # no claim of same updates for a user's backend verify never checked
        clauses = [f"same start, same updates ({parity_text})"]
    return "; ".join(clauses) + (
        f"; whether float32 rounding or a real difference parts them is measured by "
        f"{REPLAY_COMMAND}"
    )


def _float64_gaps(columns: list[dict], with_control: bool) -> list[str]:
    """`torch from numpy-vec by 0.03` for each backend apart in float64 (and the control pair,
    numpy-loop, where asked and measured)."""
    parts = []
    for column in columns:
        ref = short_name(str(column.get("reference")))
        for backend in column.get("apart") or []:
            d = (column.get("backends") or {}).get(backend, {}).get("float64")
            parts.append(f"{short_name(backend)} from {ref} by {_g(d)}")
        if with_control and column.get("control") is not None:
            parts.append(f"numpy-loop from {ref} by {_g(column['control'])}")
    return parts


def _worst(columns: list[dict], own: bool) -> float | None:
    values = []
    for column in columns:
        for by_dtype in (column.get("backends") or {}).values():
            for dtype, d in by_dtype.items():
                if isinstance(d, (int, float)) and (dtype != "float64") == own:
                    values.append(float(d))
    return max(values) if values else None


def _g(value) -> str:
    return "?" if value is None else f"{value:.1g}"
