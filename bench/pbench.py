"""pytest-benchmark's JSON (from `pytest tests/benchmarks --benchmark-only --benchmark-json
FILE`) turned into the run folder tables `bench run` writes: results.csv, env.json and
summary.md, so both routes give the same report.

Each training benchmark becomes a results row (dataset = the benchmark's model, epoch_s = the
median round, epoch_s_min/max = the fastest and slowest round, first_epoch_s = the first,
untimed warm-up call); the predict benchmark of the same model, backend and batch size fills
that row's predict_s.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd

from .errors import UsageError
from .markdown import format_seconds, md_table
from .schema import RESULT_COLUMNS
from .summary import render_summary
from .tables import load_run


def _rows(data: dict, source: str) -> list[dict]:
    rows: dict[tuple, dict] = {}
    predicts: dict[tuple, float] = {}
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info") or {}
        stats = bench.get("stats") or {}
        if "backend" not in info or "median" not in stats:
            continue
        key = (info["model"], info["backend"], int(info["batch_size"]))
        if info.get("kind") == "overhead":
            continue  # see overhead_table
        if info.get("kind") == "predict":
            predicts[key] = stats["median"]
            continue
        model = info["model"]
        sizes = model.split("-")[1:]
        hidden = "x".join(sizes[1:-1]) or "none"
        rows[key] = {
            "run_id": source,
            "cell_id": f"{model}|{info['backend']}|{info['batch_size']}",
            "part": "pytest-benchmark",
            "dataset": model,
            "backend": info["backend"],
            "loss": "cce",
            "optimizer": "sgd",
            "lr": 0.01,
            "batch_size": int(info["batch_size"]),
            "hidden": hidden,
            "activation": "relu",
            "epochs": 1,  # a round is one epoch; the rounds are epochs_run
            "dtype": "float32",
            "threads": info.get("threads"),
            "repeat": 0,
            "status": "ok",
            "n_train": info.get("n_samples"),
            "first_epoch_s": info.get("first_call_s"),
            "epoch_s": stats["median"],
            "epoch_s_min": stats.get("min"),
            "epoch_s_max": stats.get("max"),
            "train_s": stats.get("total"),
            "samples_per_s": info.get("samples_per_s"),
            "gflops": info.get("gflops"),
            "roofline": info.get("roofline"),
            "epochs_run": stats.get("rounds"),
        }
    for key, seconds in predicts.items():
        if key in rows:
            rows[key]["predict_s"] = seconds
    return list(rows.values())


def _env(data: dict, source: str, rows: list[dict]) -> dict:
    machine = data.get("machine_info") or {}
    cpu = machine.get("cpu") or {}
    infos = [b.get("extra_info") or {} for b in data.get("benchmarks", [])]
    peak = next((i["matmul_peak_gflops"] for i in infos if i.get("matmul_peak_gflops")), None)
    threads = next((r["threads"] for r in rows if r.get("threads")), None)
    return {
        "run_id": source,
        "name": f"pytest-benchmark {source}",
        "source": "pytest-benchmark",
        "status": "complete",
        "started_at": data.get("datetime"),
        "command": "pytest tests/benchmarks --benchmark-only",
        "python": machine.get("python_version"),
        "machine": {
            "cpu": cpu.get("brand_raw") or machine.get("processor"),
            "cores": cpu.get("count"),
            "platform": machine.get("system"),
        },
        "threads": threads,
        "matmul_gflops": {"float32": peak} if peak else {},
        "git_commit": (data.get("commit_info") or {}).get("id"),
        "versions": {"pytest-benchmark": data.get("version")},
    }


def overhead_table(data: dict) -> pd.DataFrame:
    """The framework-overhead benchmarks: per framework, model and batch size, the median
    round of the backend as `bench run` drives it and of the plain framework code, and their
    ratio (above 1: the backend is slower than plain code)."""
    times = {}
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info") or {}
        if info.get("kind") == "overhead" and "median" in (bench.get("stats") or {}):
            key = (info["backend"], info["model"], int(info["batch_size"]))
            entry = times.setdefault(key, {})
            entry[info["variant"]] = bench["stats"]["median"]
            if "ratio_to_plain" in info:
                entry["interleaved"] = (
                    info["ratio_to_plain"],
                    info.get("ratio_p10"),
                    info.get("ratio_p90"),
                )
    rows = [
        {
            "framework": fw,
            "model": model,
            "batch_size": bs,
            "mlp_bench_s": t["mlp-bench"],
            "plain_s": t["plain"],
            "ratio": t["mlp-bench"] / t["plain"],
            **dict(
                zip(
                    ["ratio_interleaved", "ratio_p10", "ratio_p90"],
                    t.get("interleaved", (math.nan,) * 3),
                )
            ),
        }
        for (fw, model, bs), t in sorted(times.items())
        if "mlp-bench" in t and "plain" in t
    ]
    columns = [
        "framework",
        "model",
        "batch_size",
        "mlp_bench_s",
        "plain_s",
        "ratio",
        "ratio_interleaved",
        "ratio_p10",
        "ratio_p90",
    ]
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in columns[3:]})


def _overhead_section(table: pd.DataFrame) -> str:
    lines = [
        "## Against plain framework code",
        "",
        "Each framework backend, driven as `bench run` drives it, against the code a user of "
        "the framework writes for the same training: `model.fit(X, Y, epochs=E, "
        "batch_size=b, shuffle=False)` for Keras, the textbook loop over tensor slices for "
        "PyTorch; E epochs per round on both sides (`tests/benchmarks/"
        "test_framework_overhead.py`). Ratio above 1: the backend is slower than plain code. "
        "The first ratio divides the two benchmarks' medians, taken minutes apart; the "
        "interleaved ratio times both in alternating rounds, so both see the same machine "
        "state: trust it over the first.",
        "",
    ]
    body = [
        [
            r.framework,
            r.model,
            str(r.batch_size),
            format_seconds(r.mlp_bench_s),
            format_seconds(r.plain_s),
            f"{r.ratio:.2f}×",
            "—"
            if math.isnan(r.ratio_interleaved)
            else f"{r.ratio_interleaved:.2f}× ({r.ratio_p10:.2f}–{r.ratio_p90:.2f})",
        ]
        for r in table.itertuples()
    ]
    header = [
        "framework",
        "model",
        "batch",
        "mlp-bench",
        "plain",
        "ratio",
        "interleaved ratio (p10–p90)",
    ]
    lines.append(md_table(header, body, n_left=2))
    return "\n".join(lines)


def _format(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def convert(json_path, out_dir=None) -> list[Path]:
    """Write results.csv, env.json and summary.md for a pytest-benchmark JSON file.

    With framework-overhead benchmarks in the file, also overhead.csv and a section of
    summary.md. `out_dir` defaults to `<json file without .json>-report/` beside it. Returns
    the files written, summary.md last.
    """
    json_path = Path(json_path)
    try:
        data = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no such file: {json_path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{json_path} is not pytest-benchmark JSON: {exc}") from None
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise UsageError(f"{json_path} is not pytest-benchmark JSON (no 'benchmarks' list)")
    rows = _rows(data, json_path.stem)
    overhead = overhead_table(data)
    if not rows and overhead.empty:
        raise UsageError(
            f"{json_path} holds no mlp-bench training benchmarks (run "
            "`pytest tests/benchmarks --benchmark-only --benchmark-json FILE`)"
        )
    out = Path(out_dir) if out_dir else json_path.with_name(json_path.stem + "-report")
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(RESULT_COLUMNS)
        for row in rows:
            writer.writerow([_format(row.get(c)) for c in RESULT_COLUMNS])
    env = _env(data, json_path.stem, rows)
    (out / "env.json").write_text(json.dumps(env, indent=2) + "\n")
    if rows:
        results, curves = load_run(out)
        summary = render_summary(results, curves, env)
    else:  # only the framework-overhead pairs were run
        summary = f"# mlp-bench: pytest-benchmark {json_path.stem}\n"
    written = [out / "results.csv", out / "env.json"]
    if len(overhead):
        summary = summary.rstrip() + "\n\n" + _overhead_section(overhead) + "\n"
        overhead.to_csv(out / "overhead.csv", index=False)
        written.append(out / "overhead.csv")
    (out / "summary.md").write_text(summary, encoding="utf-8")
    return [*written, out / "summary.md"]
