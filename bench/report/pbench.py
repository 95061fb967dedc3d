"""pytest-benchmark's JSON (from `pytest tests/benchmarks --benchmark-only --benchmark-json
FILE`) turned into the run folder tables `bench run` writes: results.csv, env.json and
summary.md, so both routes give the same report.

Each training benchmark becomes a results row (dataset = the benchmark's model, epoch_s = the
median round, epoch_s_min/max = the fastest and slowest round, first_epoch_s = the first,
untimed warm-up call); the predict benchmark of the same model, backend and batch size fills
that row's predict_s.

The suite records what `bench run` records of noise (tests/benchmarks/conftest.py): each
benchmark's rounds (`extra_info.rounds_s`, written to curves.csv as epochs 2.., the warm-up
call as epoch 1, so the report's intervals come from them as from a run's steady epochs), its
spread and `noisy` flag, and the machine's load while it ran (summed into one session's load
in env.json, judged by bench.report.noise as a run's is).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.report.loading import load_run
from bench.report.markdown import format_seconds, md_table
from bench.report.noise import load_busy
from bench.report.summary import render_summary
from bench.report.targets import targets_section, targets_table
from bench.report.write import write_error, write_text
from bench.store.schema import CURVE_COLUMNS, CURVE_KEYS, RESULT_COLUMNS


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _benchmarks(data, where: str = "the JSON") -> list[tuple[dict, dict]]:
    """(extra_info, stats) of each mlp-bench benchmark in pytest-benchmark JSON `data`.

    Benchmarks without the project's extra_info (someone else's) are skipped; anything of the
    wrong shape is a UsageError naming the benchmark and the field.
    """
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise UsageError(f"{where} is not pytest-benchmark JSON (no 'benchmarks' list)")
    benches = data["benchmarks"]
    if not isinstance(benches, list):
        raise UsageError(
            f"{where} is not pytest-benchmark JSON ('benchmarks' is a "
            f"{type(benches).__name__}, not a list)"
        )
    out = []
    for i, bench in enumerate(benches):
        what = f"{where}: benchmark {i}"
        if not isinstance(bench, dict):
            raise UsageError(f"{what} is a {type(bench).__name__}, not an object")
        what += f" ({bench.get('name')})" if isinstance(bench.get("name"), str) else ""
        info, stats = bench.get("extra_info"), bench.get("stats")
        info, stats = {} if info is None else info, {} if stats is None else stats
        for name, value in (("extra_info", info), ("stats", stats)):
            if not isinstance(value, dict):
                raise UsageError(f"{what}: '{name}' is a {type(value).__name__}, not an object")
        if "backend" not in info or "median" not in stats:
            continue
        problems = [
            f"stats.{k}"
            for k in ("median", "min", "max", "iqr")
            if k in stats and stats[k] is not None and not _number(stats[k])
        ]
        problems += [
            f"extra_info.{k}"
            for k in ("backend", "model")
            if not isinstance(info.get(k), str) or not info[k]
        ]
        size = info.get("batch_size")
        if not (_number(size) and size == int(size) and size > 0):
            problems.append("extra_info.batch_size")
        if problems:
            raise UsageError(f"{what}: {', '.join(problems)} missing or of the wrong type")
        out.append((info, stats))
    return out


def _rows(data: dict, source: str, where: str = "the JSON") -> list[dict]:
    rows: dict[tuple, dict] = {}
    predicts: dict[tuple, float] = {}
    for info, stats in _benchmarks(data, where):
        key = (info["model"], info["backend"], int(info["batch_size"]))
        if info.get("kind") in ("overhead", "target"):
            continue  # see overhead_table and bench.report.targets
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
            # the rounds' interquartile range over their median, as bench run's cells have
            "epoch_s_spread": (
                stats["iqr"] / stats["median"]
                if _number(stats.get("iqr")) and stats["median"] > 0
                else None
            ),
            "train_s": stats.get("total"),
            "samples_per_s": info.get("samples_per_s"),
            "gflops": info.get("gflops"),
            "roofline": info.get("roofline"),
            "epochs_run": stats.get("rounds"),
            "noisy": info.get("noisy") if isinstance(info.get("noisy"), bool) else None,
        }
    for key, seconds in predicts.items():
        if key in rows:
            rows[key]["predict_s"] = seconds
    return list(rows.values())


def _round_times(info: dict, stats: dict) -> list[float]:
    """The benchmark's rounds: extra_info.rounds_s (the suite's), else stats.data (written
    with --benchmark-save-data); only finite, positive times."""
    for rounds in (info.get("rounds_s"), stats.get("data")):
        if isinstance(rounds, list) and rounds:
            return [float(t) for t in rounds if _number(t) and t > 0]
    return []


def _curves(data: dict, rows: list[dict], where: str) -> list[dict]:
    """curves.csv rows: per training benchmark, its warm-up call as epoch 1 and its rounds
    as epochs 2.. (the steady epochs of a run)."""
    by_cell = {r["cell_id"]: r for r in rows}
    out = []
    for info, stats in _benchmarks(data, where):
        if info.get("kind") in ("overhead", "predict", "target"):
            continue
        row = by_cell.get(f"{info['model']}|{info['backend']}|{info['batch_size']}")
        rounds = _round_times(info, stats)
        if row is None or not rounds:
            continue
        first = row.get("first_epoch_s")
        times = [first if _number(first) and first > 0 else None, *rounds]
        elapsed = 0.0
        for epoch, t in enumerate(times, 1):
            if t is None:
                continue
            elapsed += t
            curve = {k: row.get(k) for k in CURVE_KEYS}
            curve.update(epoch=epoch, epoch_s=t, elapsed_s=elapsed)
            out.append(curve)
    return out


def _session_load(data: dict, where: str) -> dict | None:
    """One load record for the whole suite, as a run's session has (sessions[].load): the
    CPU other processes took while the benchmarks ran, summed over them."""
    loads = [i["load"] for i, _ in _benchmarks(data, where) if isinstance(i.get("load"), dict)]
    if not loads:
        return None
    other = [x.get("other_cpu_s") for x in loads]
    walls = [x.get("wall_s") for x in loads]
    load = {"start": loads[0].get("start"), "end": loads[-1].get("end")}
    if all(_number(o) for o in other) and all(_number(w) for w in walls) and sum(walls) > 0:
        load.update(other_cpu_s=round(sum(other), 2), wall_s=round(sum(walls), 2))
        load["other_cores"] = round(sum(other) / sum(walls), 2)
    load["busy"] = load_busy(load, load.get("wall_s"))
    return load


def _env(data: dict, source: str, rows: list[dict], converted_by: str) -> dict:
    machine = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    infos = [info for info, _ in _benchmarks(data)]
    peak = next((i["matmul_peak_gflops"] for i in infos if i.get("matmul_peak_gflops")), None)
    threads = next((r["threads"] for r in rows if r.get("threads")), None)
    load = _session_load(data, "the JSON")
    return {
        "run_id": source,
        "name": f"pytest-benchmark {source}",
        "source": "pytest-benchmark",
        "status": "complete",
        "started_at": data.get("datetime"),
        # pytest-benchmark's JSON records no command line; tests/benchmarks/conftest.py adds
        # it as "command" where it can. Without it, the summary says it is unknown.
        "command": _recorded_command(data),
        "converted_by": converted_by,
        "python": machine.get("python_version"),
        "machine": {
            "cpu": cpu.get("brand_raw") or machine.get("processor"),
            "cores": cpu.get("count"),
            "platform": machine.get("system"),
        },
        "threads": threads,
        "matmul_gflops": {"float32": peak} if peak else {},
        "git_commit": (data.get("commit_info") or {}).get("id")
        if isinstance(data.get("commit_info"), dict)
        else None,
        "versions": {"pytest-benchmark": data.get("version")},
        "sessions": [{"index": 0, "load": load}] if load else [],
    }


def _recorded_command(data: dict) -> str | None:
    command = data.get("command")
    if isinstance(command, list) and all(isinstance(c, str) for c in command):
        return " ".join(command)
    return command if isinstance(command, str) and command.strip() else None


def overhead_table(data: dict) -> pd.DataFrame:
    """The framework-overhead benchmarks: per framework, model and batch size, the median
    round of the backend as `bench run` drives it and of the plain framework code, and their
    ratio (above 1: the backend is slower than plain code)."""
    times = {}
    for info, stats in _benchmarks(data):
        if info.get("kind") == "overhead" and isinstance(info.get("variant"), str):
            order = info.get("order", "fixed")
            device = info.get("device", "cpu")
            key = (info["backend"], info["model"], order, device, int(info["batch_size"]))
            entry = times.setdefault(key, {})
            entry[info["variant"]] = stats["median"]
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
            "order": order,
            "device": device,
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
        for (fw, model, order, device, bs), t in sorted(times.items())
        if "mlp-bench" in t and "plain" in t
    ]
    columns = [
        "framework",
        "model",
        "order",
        "device",
        "batch_size",
        "mlp_bench_s",
        "plain_s",
        "ratio",
        "ratio_interleaved",
        "ratio_p10",
        "ratio_p90",
    ]
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in columns[5:]})


def _overhead_section(table: pd.DataFrame) -> str:
    lines = [
        "## Against plain framework code",
        "",
        "Each framework backend, driven as `bench run` drives it, against the code a user of "
        "the framework writes for the same training: `model.fit(X, Y, epochs=E, "
        "batch_size=b, shuffle=False)` (fixed order) or `shuffle=True` for Keras, the textbook "
        "loop over tensor slices (fixed) or `torch.randperm` index slices (shuffled) for "
        "PyTorch; E epochs per round on both sides (`tests/benchmarks/"
        "test_framework_overhead.py`). Ratio above 1: the backend is slower than plain code. "
        "The first ratio divides the two benchmarks' medians, taken minutes apart; the "
        "interleaved ratio times both in alternating rounds, so both see the same machine "
        "state: trust it over the first.",
        "",
    ]
    devices = (table["device"] != "cpu").any()  # a device column only where one is not the CPU
    if devices:
        lines += [
            "On a GPU the plain PyTorch code keeps the data on the device and shuffles it there "
            "(`torch.randperm` and `index_select` on the device; `tests/benchmarks/"
            "test_plain_torch_overhead.py`), as the backend does with its staged data.",
            "",
        ]
    body = [
        [
            r.framework,
            r.model,
            r.order,
            *([r.device] if devices else []),
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
        "order",
        *(["device"] if devices else []),
        "batch",
        "mlp-bench",
        "plain",
        "ratio",
        "interleaved ratio (p10–p90)",
    ]
    lines.append(md_table(header, body, n_left=4 if devices else 3))
    return "\n".join(lines)


def _format(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def _read_json(json_path: Path):
    if json_path.is_dir():
        raise UsageError(
            f"{json_path} is a folder, not a pytest-benchmark JSON file "
            "(the file `--benchmark-json FILE` wrote)"
        )
    try:
        return json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such file: {json_path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{json_path} is not pytest-benchmark JSON: {exc}") from None
    except RecursionError:
        raise UsageError(f"{json_path} is not pytest-benchmark JSON: nested too deep") from None
    except OSError as exc:
        raise UsageError(f"cannot read {json_path}: {exc.strerror or exc}") from None


def convert(json_path, out_dir=None, command: str | None = None) -> list[Path]:
    """Write results.csv, env.json and summary.md for a pytest-benchmark JSON file (and
    curves.csv when it records the benchmarks' rounds).

    With framework-overhead benchmarks in the file, also overhead.csv and a section of
    summary.md. `out_dir` defaults to `<json file without .json>-report/` beside it;
    `command` is the conversion's own command line (recorded in env.json). Returns the files
    written, summary.md last. Bad input is a UsageError; a folder that cannot be written a
    ReportError.
    """
    json_path = Path(json_path)
    data = _read_json(json_path)
    rows = _rows(data, json_path.stem, where=str(json_path))
    overhead = overhead_table(data)
    targets = targets_table(_benchmarks(data))
    if not rows and overhead.empty and targets.empty:
        raise UsageError(
            f"{json_path} holds no mlp-bench training benchmarks (run "
            "`pytest tests/benchmarks --benchmark-only --benchmark-json FILE`)"
        )
    out = Path(out_dir) if out_dir else json_path.with_name(json_path.stem + "-report")
    command = command or f"python -m bench report --pytest-benchmark {json_path}" + (
        f" --out {out_dir}" if out_dir else ""
    )
    env = _env(data, json_path.stem, rows, command)
    columns = [*RESULT_COLUMNS, *(c for c in ("epoch_s_spread",) if c not in RESULT_COLUMNS)]
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format(row.get(c)) for c in columns])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error("the tables", out, exc, command) from None
    write_text(out / "results.csv", table.getvalue(), command)
    round_rows = _curves(data, rows, str(json_path))
    if round_rows:  # the suite's rounds (tests/benchmarks/conftest.py): the intervals' samples
        curve_table = io.StringIO(newline="")
        writer = csv.writer(curve_table)
        writer.writerow(CURVE_COLUMNS)
        for row in round_rows:
            writer.writerow([_format(row.get(c)) for c in CURVE_COLUMNS])
        write_text(out / "curves.csv", curve_table.getvalue(), command)
    elif (out / "curves.csv").exists():  # a stale one from an earlier conversion
        (out / "curves.csv").unlink()
    write_text(out / "env.json", json.dumps(env, indent=2) + "\n", command)
    if rows:
        results, curves = load_run(out)
        summary = render_summary(results, curves, env)
    else:  # only the framework-overhead pairs were run
        summary = f"# mlp-bench: pytest-benchmark {json_path.stem}\n"
    written = [out / "results.csv", *([out / "curves.csv"] if round_rows else []), out / "env.json"]
    if len(overhead):
        summary = summary.rstrip() + "\n\n" + _overhead_section(overhead) + "\n"
        write_text(out / "overhead.csv", overhead.to_csv(index=False), command)
        written.append(out / "overhead.csv")
    if len(targets):
        summary = summary.rstrip() + "\n\n" + targets_section(targets) + "\n"
    write_text(out / "summary.md", summary, command)
    return [*written, out / "summary.md"]
