"""bench.report's write and plots on a small run folder written here: loading, summary numbers,
the Markdown a person reads, and the PNGs."""

import json
import math
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from bench.errors import NotARunError
from bench.report import loading
from bench.report import write as report
from bench.report.loading import load_env, load_run
from bench.report.summary import render_summary
from bench.report.tables import summarize
from bench.store.schema import CURVE_COLUMNS, RESULT_COLUMNS

SYNTH = "synthetic:n=1000,d=20,k=3"
N_TRAIN = {"digits": 1437, SYNTH: 800}
N_PARAMS = 7510

# (dataset, backend, batch_size) -> per repeat: (epoch_s, test_acc) or a failure status.
CELLS = {
    ("digits", "numpy-vec", 32): [(0.020, 0.950), (0.024, 0.960)],
    ("digits", "torch", 32): [(0.010, 0.9555), (0.012, 0.9545)],
    ("digits", "keras", 32): [(0.040, 0.940), "error"],
    ("digits", "numpy-vec", 256): [(0.004, 0.890), (0.004, 0.930)],
    ("digits", "torch", 256): [(0.005, 0.930), (0.006, 0.930)],
    ("digits", "keras", 256): [(0.008, 0.925), (0.010, 0.927)],
    (SYNTH, "numpy-vec", 32): [(0.0030, 0.81), (0.0034, 0.83)],
    (SYNTH, "torch", 32): [(0.0020, 0.82), (0.0020, 0.82)],
    (SYNTH, "numpy-vec", 256): [(0.0008, 0.70), (0.0010, 0.72)],
    (SYNTH, "torch", 256): [(0.0012, 0.75), "diverged"],
}
FIRST_EPOCH = {"numpy-vec": 0.03, "torch": 0.05, "keras": 1.5}
ERROR = "RuntimeError: worker died | exit code -9 " + "x" * 200
EPOCHS = 3


def result_row(dataset, backend, bs, repeat, outcome):
    row = dict.fromkeys(RESULT_COLUMNS, None)
    row.update(
        run_id="r1",
        cell_id=f"{dataset}|{backend}|{bs}",
        part="main",
        dataset=dataset,
        backend=backend,
        loss="cce",
        optimizer="sgd",
        lr=0.1,
        batch_size=bs,
        hidden="100",
        activation="relu",
        epochs=EPOCHS,
        dtype="float32",
        threads=1,
        output="softmax",
        momentum=0.0,
        weight_decay=0.0,
        preprocess="scale",
        init="glorot_uniform",
        order="shuffle",
        eval_every=1,
        repeat=repeat,
        seed=repeat,
        threads_effective=json.dumps({"blas": 1, backend.split("-")[0]: 1}),
        n_train=N_TRAIN[dataset],
        n_test=360,
        n_features=64,
        n_classes=10,
        n_params=N_PARAMS,
        target_acc=0.9,
        started_at="2025-01-05T14:02:00+00:00",
        finished_at="2025-01-05T14:02:05+00:00",
    )
    if isinstance(outcome, str):
        row["status"] = outcome
        if outcome == "error":
            row["error"] = ERROR
        else:
            row["diverged_epoch"] = 2
        return row
    epoch_s, acc = outcome
    first = FIRST_EPOCH[backend]
    gflops = 6 * N_PARAMS * N_TRAIN[dataset] / epoch_s / 1e9
    row.update(
        status="ok",
        build_s=0.01,
        first_epoch_s=first,
        epoch_s=epoch_s,
        epoch_s_min=epoch_s * 0.9,
        epoch_s_max=epoch_s * 1.1,
        train_s=first + (EPOCHS - 1) * epoch_s,
        samples_per_s=N_TRAIN[dataset] / epoch_s,
        gflops=gflops,
        roofline=gflops / 100.0,
        predict_s=0.001,
        epochs_run=EPOCHS,
        train_loss=0.2,
        test_loss=0.25,
        train_acc=acc + 0.02,
        test_acc=acc,
        best_test_acc=acc,
        time_to_target_s=first + epoch_s if acc >= 0.9 else None,
    )
    return row


def _curve_rows(r):
    rows, elapsed = [], 0.0
    n_epochs = EPOCHS if r["status"] == "ok" else 2
    for epoch in range(1, n_epochs + 1):
        epoch_s = FIRST_EPOCH[r["backend"]] if epoch == 1 else (r["epoch_s"] or 0.01)
        elapsed += epoch_s
        evaluated = epoch != 2  # epoch 2 not evaluated: metrics NaN
        speed = {"numpy-vec": 1.0, "torch": 1.3, "keras": 0.8}[r["backend"]]
        loss = 2.0 / epoch**speed * (1 + 0.1 * r["repeat"]) * (1 + 1000 / r["batch_size"] ** 2)
        rows.append(
            {
                **{c: r[c] for c in CURVE_COLUMNS if c in r and c not in ("epoch_s",)},
                "epoch": epoch,
                "epoch_s": epoch_s,
                "elapsed_s": elapsed,
                "epoch_loss": loss * 1.1,
                "train_loss": loss if evaluated else None,
                "test_loss": loss * 1.2 if evaluated else None,
                "train_acc": 1 - loss / 20 if evaluated else None,
                "test_acc": 0.97 - loss / 20 if evaluated else None,
            }
        )
    return rows


def make_tables():
    rows = [
        result_row(dataset, backend, bs, repeat, outcome)
        for (dataset, backend, bs), outcomes in CELLS.items()
        for repeat, outcome in enumerate(outcomes)
    ]
    results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    curves = pd.DataFrame([c for r in rows for c in _curve_rows(r)], columns=list(CURVE_COLUMNS))
    return results, curves


ENV = {
    "run_id": "r1",
    "name": "digits-vs-synthetic",
    "status": "complete",
    "command": "python -m bench run --datasets digits,synthetic --batch-sizes 32,256",
    "started_at": "2025-01-05T14:00:00+00:00",
    "finished_at": "2025-01-05T14:12:30+00:00",
    "machine": {"cpu": "Test CPU 9000", "cores": 8, "platform": "Linux-6.1-x86_64"},
    "python": "3.11.9",
    "versions": {"numpy": "2.1.0", "torch": "2.13.0", "tensorflow": None, "keras": "3.5.0"},
    "blas": "openblas 0.3.27",
    "threads": 1,
    "matmul_gflops": {"float32": 100.0, "float64": 50.0},
    "git_commit": "0123456789abcdef",
}


def write_run(folder, results=None, curves=None, env=None):
    folder.mkdir(parents=True, exist_ok=True)
    if results is None:
        results, curves = make_tables()
    results.to_csv(folder / "results.csv", index=False)
    if curves is not None:
        curves.to_csv(folder / "curves.csv", index=False)
    (folder / "env.json").write_text(json.dumps(env or ENV))
    return folder


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path / "run")


@pytest.fixture
def loaded(run_dir):
    return load_run(run_dir)


# --------------------------------------------------------------------------- loading


def test_load_run_round_trips_with_explicit_dtypes(loaded):
    results, curves = loaded
    assert list(results.columns) == list(RESULT_COLUMNS)
    assert list(curves.columns) == list(CURVE_COLUMNS)
    assert len(results) == sum(len(v) for v in CELLS.values())
    assert results["hidden"].iloc[0] == "100"  # a string, not the number 100
    assert pd.api.types.is_string_dtype(results["hidden"])
    assert pd.api.types.is_string_dtype(results["threads_effective"])
    assert json.loads(results["threads_effective"].iloc[0]) == {"blas": 1, "numpy": 1}
    for col in ("batch_size", "repeat", "epochs", "threads", "diverged_epoch", "n_params"):
        assert str(results[col].dtype) == "Int64", col
    for col in ("lr", "epoch_s", "test_acc", "roofline", "time_to_target_s"):
        assert results[col].dtype == np.float64, col
    failed = results[results["status"] != "ok"]
    assert failed["epoch_s"].isna().all() and failed["test_acc"].isna().all()
    assert results.loc[results["status"] == "diverged", "diverged_epoch"].tolist() == [2]
    assert results["diverged_epoch"].isna().sum() == len(results) - 1
    assert results.loc[results["status"] == "error", "error"].iloc[0] == ERROR
    assert str(curves["epoch"].dtype) == "Int64"
    assert curves.loc[curves["epoch"] == 2, "test_loss"].isna().all()
    assert curves.loc[curves["epoch"] != 2, "test_loss"].notna().all()


def test_cut_off_last_line_is_dropped_with_a_warning(run_dir):
    text = (run_dir / "results.csv").read_text()
    n = len(text.splitlines()) - 1
    (run_dir / "results.csv").write_text(text + "r1,digits|torch|32,main,dig")
    with pytest.warns(UserWarning, match="cut off"):
        results, _ = load_run(run_dir)
    assert len(results) == n
    # A last line with a line end but too few fields is dropped too.
    (run_dir / "results.csv").write_text(text + "r1,digits|torch|32,main\n")
    with pytest.warns(UserWarning, match="wrong number of fields"):
        results, _ = load_run(run_dir)
    assert len(results) == n


def test_a_complete_file_loads_without_warnings(run_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_run(run_dir)


def test_not_a_run_folder(tmp_path, run_dir):
    with pytest.raises(NotARunError, match="not a run folder"):
        load_run(run_dir / "results.csv")
    with pytest.raises(NotARunError, match="does not exist"):
        load_run(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NotARunError) as err:
        load_run(empty)
    message = str(err.value)
    assert str(empty) in message and "no results.csv" in message and "\n" not in message
    (empty / "results.csv").write_text(",".join(RESULT_COLUMNS) + "\n")
    with pytest.raises(NotARunError, match="no env.json"):
        load_run(empty)


def test_header_only_run_and_missing_curves(tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    (folder / "results.csv").write_text(",".join(RESULT_COLUMNS) + "\n")
    (folder / "env.json").write_text(json.dumps({**ENV, "status": "running"}))
    results, curves = load_run(folder)
    assert results.empty and list(results.columns) == list(RESULT_COLUMNS)
    assert curves.empty and list(curves.columns) == list(CURVE_COLUMNS)
    assert str(results["batch_size"].dtype) == "Int64"
    assert summarize(results).empty
    text = render_summary(results, curves, load_env(folder))
    assert "not finished" in text and "No cell has finished yet" in text
    files = report.write_report(folder)
    assert files == [folder / "summary.md"]


# --------------------------------------------------------------------------- summarize


def _one(summary, dataset, backend, bs):
    sel = summary[
        (summary["dataset"] == dataset)
        & (summary["backend"] == backend)
        & (summary["batch_size"] == bs)
    ]
    assert len(sel) == 1
    return sel.iloc[0]


def test_summarize_numbers(loaded):
    results, _ = loaded
    s = summarize(results)
    assert len(s) == len(CELLS) - 0  # every cell has at least one ok repeat
    r = _one(s, "digits", "numpy-vec", 32)
    assert r["n"] == 2
    assert r["epoch_s_median"] == pytest.approx(0.022)
    assert (r["epoch_s_min"], r["epoch_s_max"]) == pytest.approx((0.020, 0.024))
    assert r["test_acc_median"] == pytest.approx(0.955)
    assert (r["test_acc_min"], r["test_acc_max"]) == pytest.approx((0.950, 0.960))
    assert r["first_epoch_s_median"] == pytest.approx(0.03)
    assert r["samples_per_s_median"] == pytest.approx(np.median([1437 / 0.020, 1437 / 0.024]))
    assert r["speedup_vs_numpy_vec"] == pytest.approx(1.0)
    assert _one(s, "digits", "torch", 32)["speedup_vs_numpy_vec"] == pytest.approx(0.022 / 0.011)
    keras = _one(s, "digits", "keras", 32)  # one repeat failed: the other one counts
    assert keras["n"] == 1 and keras["speedup_vs_numpy_vec"] == pytest.approx(0.022 / 0.040)
    assert _one(s, "digits", "keras", 256)["speedup_vs_numpy_vec"] == pytest.approx(0.004 / 0.009)
    synth = _one(s, SYNTH, "torch", 256)
    assert synth["n"] == 1 and synth["epoch_s_median"] == pytest.approx(0.0012)
    assert synth["speedup_vs_numpy_vec"] == pytest.approx(0.0009 / 0.0012)
    assert _one(s, SYNTH, "numpy-vec", 256)["roofline_median"] == pytest.approx(
        np.median([6 * N_PARAMS * 800 / t / 1e9 / 100 for t in (0.0008, 0.0010)])
    )
    # time to target: only repeats reaching 0.9 have one
    assert _one(s, "digits", "numpy-vec", 256)["time_to_target_s_median"] == pytest.approx(0.034)
    assert math.isnan(_one(s, SYNTH, "torch", 32)["time_to_target_s_median"])


def test_speedup_is_nan_without_numpy_vec(loaded):
    results, _ = loaded
    s = summarize(results[results["backend"] != "numpy-vec"])
    assert s["speedup_vs_numpy_vec"].isna().all()


def test_a_retried_failure_is_superseded_by_its_ok_row(loaded):
    results, _ = loaded
    retry = results[results["status"] == "error"].copy()
    retry["status"], retry["error"], retry["epoch_s"], retry["test_acc"] = "ok", None, 0.05, 0.9
    s = summarize(pd.concat([results, retry], ignore_index=True))
    assert _one(s, "digits", "keras", 32)["epoch_s_median"] == pytest.approx(0.045)


# --------------------------------------------------------------------------- the summary


def _table_rows(text, heading):
    """The body rows of the first table after `heading`, as lists of stripped cells."""
    block = text.split(heading, 1)[1]
    lines = [ln for ln in block.split("\n## ")[0].splitlines() if ln.startswith("|")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines[2:]]


def test_summary_tables_and_bold_marks(loaded):
    results, curves = loaded
    text = render_summary(results, curves, ENV)
    rows = {r[0]: r[1:] for r in _table_rows(text, "## digits · loss cce")}
    assert list(rows) == ["numpy-vec", "keras", "torch"]
    # batch 32: torch fastest; numpy-vec (0.955) and torch (0.955) tie on accuracy
    assert rows["numpy-vec"][0] == "**0.955** ±0.005 · 22 ms (±9%) · 1.0×"
    assert rows["torch"][0] == "**0.955** ±0.001 · **11 ms** (±9%) · 2.0×"
    assert rows["keras"][0] == "0.940 · 40 ms · 0.55× (1/2 ok)"
    # batch 256: numpy-vec fastest, torch alone most accurate (keras 0.926 is > 0.001 behind)
    assert rows["numpy-vec"][1] == "0.910 ±0.020 · **4 ms** (±0%) · 1.0×"
    assert rows["torch"][1] == "**0.930** ±0.000 · 5.5 ms (±9%) · 0.73×"
    assert rows["keras"][1].startswith("0.926 ±0.001 · 9 ms")
    synth = {r[0]: r[1:] for r in _table_rows(text, f"## {SYNTH} · loss cce")}
    # its band overlaps numpy-vec's: the ratio is within the noise
    assert synth["torch"][1] == "**0.750** · 1.2 ms · ≈0.75× (1/2 ok)"
    # batch 32: both at 0.820, so no accuracy is marked; torch is faster
    assert synth["numpy-vec"][0] == "0.820 ±0.010 · 3.2 ms (±6%) · 1.0×"
    assert synth["torch"][0] == "0.820 ±0.000 · **2 ms** (±0%) · 1.6×"
    assert text.count("**") % 2 == 0


def test_summary_header_and_constants(loaded):
    results, curves = loaded
    text = render_summary(results, curves, ENV)
    # the title, the verdict, then the environment: all before "How to read this"
    head = text.split("**How to read this.**", 1)[0]
    assert head.startswith("# mlp-bench: digits-vs-synthetic (`r1`)\n\n## Verdict")
    for fragment in (
        "Test CPU 9000 (8 cores",
        "Status: **complete**",
        "1 requested; in effect numpy-vec: blas 1, numpy 1; keras: blas 1, keras 1",
        "NumPy 2.1.0",
        "Keras 3.5.0",
        "2025-01-05 14:00 UTC",
        "12 min 30 s",
        "`python -m bench run --datasets digits,synthetic --batch-sizes 32,256`",
        "optimizer sgd · lr 0.1 · hidden 100 · activation relu · epochs 3",
    ):
        assert fragment in head, fragment
    assert "How to read this" in text and "**Bold**" in text
    assert "TensorFlow" not in head  # absent versions are left out
    assert "interrupted" not in head
    assert "###" not in text  # no axis but dataset varies: no sub-sections


def test_interrupted_run_says_so(loaded):
    results, curves = loaded
    text = render_summary(results, curves, {**ENV, "status": "interrupted"})
    assert "**This run was interrupted.**" in text


def test_warmup_compute_target_and_failed_sections(loaded):
    results, curves = loaded
    text = render_summary(results, curves, ENV)
    warm = {(r[0], r[1]): r[2:] for r in _table_rows(text, "## Warm-up")}
    assert warm[("digits", "keras")][0] == "1.5 s · 38×"  # 1.5 s / 40 ms
    assert warm[("digits", "numpy-vec")][1] == "30 ms · 7.5×"
    compute = {(r[0], r[1]): r[2:] for r in _table_rows(text, "## Compute")}
    assert compute[("digits", "numpy-vec")][1] == "16.2 GFLOP/s · 16%"
    target = {(r[0], r[1]): r[2:] for r in _table_rows(text, "## Time to target")}
    assert target[("digits", "numpy-vec")] == ["52 ms", "34 ms (1/2 reached)"]
    assert target[(SYNTH, "torch")] == ["not reached", "not reached"]
    failed = _table_rows(text, "## Failed cells")
    assert len(failed) == 2
    error = next(r for r in failed if r[-2] == "error")
    assert error[:4] == ["digits", "keras", "32", "1"]
    assert error[-1].startswith("RuntimeError: worker died \\| exit code -9 xxx")
    assert error[-1].endswith("…") and len(error[-1].replace("\\|", "|")) == 120
    diverged = next(r for r in failed if r[-2] == "diverged")
    assert diverged[:4] == [SYNTH, "torch", "256", "1"] and diverged[-1] == "diverged at epoch 2"
    assert "2 of 20 cells" in text


def test_all_ok_and_varying_axes_make_sub_sections(loaded):
    results, curves = loaded
    ok = results[results["status"] == "ok"].copy()
    adam = ok.copy()
    adam["optimizer"], adam["cell_id"] = "adam", adam["cell_id"] + "|adam"
    both = pd.concat([ok, adam], ignore_index=True)
    text = render_summary(both, curves, ENV)
    assert f"All {len(both)} cells finished ok" in text
    assert "### optimizer sgd" in text and "### optimizer adam" in text
    head = text.split("**How to read this.**", 1)[0]
    assert "optimizer sgd ·" not in head  # no longer a constant
    assert summarize(both)["n"].sum() == len(both)


# --------------------------------------------------------------------------- plots and files


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_write_report_writes_summary_and_valid_pngs(run_dir):
    files = report.write_report(run_dir, plots=True)
    assert files[0] == run_dir / "summary.md"
    pngs = files[1:-1]  # the last is report.html
    assert files[-1] == run_dir / "report.html"
    names = sorted(p.name for p in pngs)
    assert names == sorted(
        [
            "curves-digits-cce.png",
            "throughput-digits.png",
            "accuracy-vs-time-digits.png",
            "curves-synthetic-n-1000-d-20-k-3-cce.png",
            "throughput-synthetic-n-1000-d-20-k-3.png",
            "accuracy-vs-time-synthetic-n-1000-d-20-k-3.png",
        ]
    )
    for p in pngs:
        assert p.parent == run_dir / "plots"
        assert re.fullmatch(r"[A-Za-z0-9._-]+\.png", p.name)
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, p.name
    summary = (run_dir / "summary.md").read_text()
    assert "](plots/curves-digits-cce.png)" in summary


def test_plots_split_varying_axes_and_skip_empty_runs(loaded, tmp_path):
    from bench.report import plots

    results, curves = loaded
    digits = results[results["dataset"] == "digits"]
    bigger = digits.copy()
    bigger["hidden"] = "256x128"
    bigger["cell_id"] = bigger["cell_id"] + "|big"
    files = plots.write_plots(pd.concat([digits, bigger]), curves, tmp_path / "p")
    names = {p.name for p in files}
    assert "curves-digits-cce-hidden-100.png" in names
    assert "throughput-digits-hidden-256x128.png" in names
    # no curves for the 256x128 cells: their curve and accuracy figures are not drawn
    assert "curves-digits-cce-hidden-256x128.png" not in names
    failed = results[results["status"] != "ok"]
    assert plots.write_plots(failed, curves, tmp_path / "none") == []


def test_importing_report_and_plots_leaves_matplotlib_out():
    code = "import sys, bench.report.write, bench.report.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_safe_names_and_colours():
    from bench.report import drawing, plots

    assert plots.safe_name(SYNTH) == "synthetic-n-1000-d-20-k-3"
    assert plots.safe_name("a b/c:d") == "a-b-c-d"
    assert drawing.backend_color("torch") == drawing.BACKEND_COLORS["torch"]
    known = set(drawing.BACKEND_COLORS.values())
    assert len(known) == len(drawing.BACKEND_COLORS)  # the known backends never share a colour
    from impls import BACKENDS

    assert set(BACKENDS) <= set(drawing.BACKEND_COLORS)  # every registered backend: its own
    others = ["mymodule:MyMLP", "their-mlp", "pkg.sub:Net", "numpy-vec2"]
    for name in others:  # any other backend: a colour of its own palette, never a known one's
        assert drawing.backend_color(name) in drawing.OTHER_COLORS
        assert drawing.backend_color(name) not in known
    # the same colour in every process (a name hash, not Python's salted hash())
    code = "from bench.report.drawing import backend_color as c; "
    code += f"print(' '.join(map(c, {others!r})))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert out.stdout.split() == [drawing.backend_color(n) for n in others], out.stderr


def test_accuracy_split_between_backends_is_explained():
    from bench.report import verdict

    def rows(accs):
        frame = [result_row("digits", b, bs, 0, (0.01, acc)) for (b, bs), acc in accs.items()]
        return loading.typed(pd.DataFrame(frame))

    split = rows(
        {
            ("numpy-vec", 1): 0.936,
            ("torch", 1): 0.969,
            ("numpy-vec", 32): 0.958,
            ("torch", 32): 0.958,
        }
    )
    found = verdict.accuracy_splits(split)
    assert found["batch_size"].tolist() == [1]
    assert found["low"].iloc[0] == ("numpy-vec", pytest.approx(0.936))
    text = render_summary(split, pd.DataFrame(), ENV)
    line = next(ln for ln in text.splitlines() if "accuracy: backends part" in ln)
    assert "at batch 1 (numpy-vec 0.936, torch 0.969)" in line
    assert "agree within 0.01 in the 1 other cell" in line and "bench verify" in line
    assert "1e-7" not in text  # no fixed parity figure: verify was not run
    same = rows({("numpy-vec", 1): 0.936, ("torch", 1): 0.94})
    assert verdict.accuracy_splits(same).empty


def test_one_duration_format_for_the_console_and_the_report():
    """The progress lines, the time accounting, the noise warning and summary.md write a
    duration with the same function: three significant digits in the unit that suits it."""
    from bench.report import markdown, noise
    from bench.run import accounting, progress

    fmt = markdown.format_seconds
    assert progress.format_seconds is fmt
    assert accounting.format_seconds is fmt
    assert noise.format_seconds is fmt
    assert fmt(2.5e-5) == "25 µs"
    assert fmt(0.0123) == "12.3 ms"
    assert fmt(0.9996) == "1 s"  # rounds up into the next unit, never "1e+03 ms"
    assert fmt(4.56) == "4.56 s"
    assert fmt(65) == "1 min 05 s"
    assert fmt(7300) == "2 h 02 min"
    assert fmt(None) == fmt(float("nan")) == "—"
    assert fmt(0) == "0 s"


def test_a_roofline_above_the_peak_is_called_a_misread_probe():
    """A committed quiet run whose probe, at the session's start, read a slower machine than
    its cells ran on (numpy-vec at 140% of it): the Compute section says so, and a run whose
    shares stay below the peak gets no such words."""
    from pathlib import Path

    from bench.report.loading import load_env, load_run
    from bench.report.sections import compute_section
    from bench.report.view import RunView

    examples = Path(__file__).resolve().parents[1] / "results" / "examples"
    for name, misread in (("20261207-050945-scaling", True), ("20261207-022550-peers", False)):
        results, _ = load_run(examples / name)
        view = RunView.of(results, load_env(examples / name))
        text = compute_section(view)
        assert ("read a slower machine than these cells ran on" in text) == misread, name
        if misread:
            assert "cells read above 110% of the peak (up to 140%)" in text
