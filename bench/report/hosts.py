"""summary.md's "Hosts" section for runs whose cells ran on a Dask cluster (bench.cluster.executor):
which machine ran which cells, each machine's facts and matmul peak, cells that shared a
machine or were run again after their worker was lost. Empty for a local run."""

from __future__ import annotations

import pandas as pd


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _peak(entry: dict) -> str:
    """The host's first measured matmul peak per dtype, e.g. '41 GFLOP/s float32 (1 thread)'."""
    parts = []
    for _session, by_threads in sorted((entry.get("matmul") or {}).items()):
        for threads, by_dtype in sorted((by_threads or {}).items(), key=lambda kv: int(kv[0])):
            for dtype, probe in sorted((by_dtype or {}).items()):
                median = probe.get("median") if isinstance(probe, dict) else probe
                if isinstance(median, (int, float)):
                    one = "thread" if str(threads) == "1" else "threads"
                    parts.append(f"{median:.0f} GFLOP/s {dtype} ({threads} {one})")
        if parts:
            break
    return ", ".join(dict.fromkeys(parts)) or "—"


def hosts_section(rows: pd.DataFrame, env: dict) -> str:
    if not env.get("schedulers") or "host" not in rows:
        return ""
    hosts = env.get("hosts") or {}
    names = [h for h in dict.fromkeys(rows["host"].map(_text)) if h]
    names += [h for h in hosts if h not in names]
    lines = [
        "## Hosts",
        "",
        "The cells ran on a Dask cluster ("
        + ", ".join(f"`{s.get('address')}`" for s in env["schedulers"])
        + "). Each row's roofline uses the matmul peak measured on its own host.",
        "",
        "| host | CPU | cores | BLAS | matmul peak | cells (ok) | backends |",
        "|---|---|---:|---|---|---:|---|",
    ]
    for name in names:
        entry = hosts.get(name) or {}
        machine = entry.get("machine") or {}
        mine = rows[rows["host"].map(_text) == name]
        ok = int((mine["status"] == "ok").sum()) if "status" in mine else 0
        backends = ", ".join(dict.fromkeys(mine["backend"].map(_text))) if len(mine) else "—"
        lines.append(
            f"| {name} | {machine.get('cpu') or '—'} | {machine.get('cores') or '—'} | "
            f"{entry.get('blas') or '—'} | {_peak(entry)} | {len(mine)} ({ok}) | {backends} |"
        )
    notes = []
    if len(names) > 1:
        notes.append(
            f"The cells ran on {len(names)} machines: speed ratios between cells of different "
            "hosts compare the machines as well as the backends (results.csv's `host` column "
            "says where each ran)."
        )
    if "shared_host" in rows:
        shared = rows[rows["shared_host"].map(_truthy)]
        if len(shared):
            where = ", ".join(dict.fromkeys(shared["host"].map(_text)))
            notes.append(
                f"{len(shared)} cells ran beside other cells of the run on the same machine "
                f"({where}: several Dask workers with the `bench` resource there), so their "
                "timings shared its cores."
            )
    if "lost_on" in rows:
        lost = rows[rows["lost_on"].map(_text) != ""]
        if len(lost):
            again = lost[lost["status"] == "ok"]
            notes.append(
                f"{len(lost)} cells lost their Dask worker mid-cell ("
                + ", ".join(dict.fromkeys(lost["lost_on"].map(_text)))
                + f"); {len(again)} of them finished when run again on another worker."
            )
    return "\n".join(lines + ([""] + notes if notes else []))
