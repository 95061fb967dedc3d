"""summary.md's Memory table and the verdict's memory line: peak host memory (the worker's
resident set) and peak device memory (the framework's allocator, CuPy's pool), medians over
repeats, per backend x device x the keys that vary; what is left out when a figure is missing."""

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import ENV, FIRST_EPOCH, result_row, write_run

from bench.report import loading, tables
from bench.report.loading import load_env, load_run
from bench.report.markdown import format_mb
from bench.report.summary import render_summary
from bench.report.verdict import MEMORY_SPLIT

EXAMPLES = Path(__file__).resolve().parents[1] / "results" / "examples"


def _results(cells, dataset="digits"):
    """Rows from {(backend, batch, device): [(host_mb, device_mb), ...]}, one per repeat."""
    rows = []
    for (backend, bs, device), repeats in cells.items():
        for repeat, (host, dev) in enumerate(repeats):
            stand_in = backend if backend in FIRST_EPOCH else "torch"  # result_row's first epochs
            row = result_row(dataset, stand_in, bs, repeat, (0.01, 0.95))
            row.update(
                backend=backend,
                cell_id=f"{dataset}|{backend}|{bs}|{device}",
                device=device,
                peak_host_mb=host,
                peak_device_mb=dev,
            )
            rows.append(row)
    frame = pd.DataFrame(rows).astype(str).replace({"None": "", "nan": ""})
    return loading.typed(frame)


def _render(results):
    return render_summary(results, pd.DataFrame(), ENV)


def _memory_rows(text):
    """The Memory table as {row label (its first cells joined by ' / '): [cells]} and its
    header, the explanation line apart."""
    block = text.split("## Memory\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
    header, body = cells[0], cells[2:]
    n_keys = header.index("backend") + 1
    return header, {" / ".join(r[:n_keys]): r[n_keys:] for r in body}


def _memory_line(text):
    verdict = text.split("## Verdict", 1)[1].split("\n## ", 1)[0].split("**How to read", 1)[0]
    found = [ln for ln in verdict.splitlines() if "memory:" in ln]
    return found[0] if found else ""


# --------------------------------------------------------------------------- the table


def test_host_memory_table_holds_medians_per_backend_and_batch():
    results = _results(
        {
            ("numpy-vec", 32, "cpu"): [(44.0, None), (46.0, None), (60.0, None)],
            ("numpy-vec", 256, "cpu"): [(52.5, None)],
            ("torch", 32, "cpu"): [(310.0, None), (312.0, None)],
            ("torch", 256, "cpu"): [(320.4, None), (322.4, None)],
            ("keras", 32, "cpu"): [(807.0, None)],
            ("keras", 256, "cpu"): [(1450.0, None)],
        }
    )
    s = tables.summarize(results)
    vec = s[(s["backend"] == "numpy-vec") & (s["batch_size"] == 32)].iloc[0]
    assert vec["peak_host_mb_median"] == pytest.approx(46.0)
    assert np.isnan(vec["peak_device_mb_median"])

    text = _render(results)
    header, rows = _memory_rows(text)
    assert header == ["backend", "batch 32", "batch 256"]  # dataset and device constant
    assert rows == {
        "numpy-vec": ["46 MB", "52.5 MB"],
        "keras": ["807 MB", "1450 MB"],
        "torch": ["311 MB", "321 MB"],
    }
    section = text.split("## Memory\n", 1)[1].split("\n## ", 1)[0]
    assert "median over repeats" in section and "**Host**: the peak resident set" in section
    assert "framework" in section
    # no device figure anywhere: neither its explanation nor its place in the cells
    assert "**Device**" not in section and "host · device" not in section
    # placed with the other cross-section tables, after Compute
    assert text.index("## Compute") < text.index("## Memory") < text.index("## Failed cells")


def test_device_figures_appear_beside_the_host_where_any_cell_has_them():
    results = _results(
        {
            ("numpy-vec", 32, "cpu"): [(44.0, None)],
            ("torch", 32, "cuda:0"): [(900.0, 120.0), (910.0, 130.0)],
            ("keras", 32, "cuda:0"): [(1800.0, 2050.0)],
        }
    )
    text = _render(results)
    header, rows = _memory_rows(text)
    assert header == ["device", "backend", "batch 32"]  # the device varies: a key of the rows
    assert rows == {
        "cpu / numpy-vec": ["44 MB · —"],  # on the CPU: no device figure
        "cuda:0 / keras": ["1800 MB · 2050 MB"],
        "cuda:0 / torch": ["905 MB · 125 MB"],  # medians of 900, 910 and 120, 130
    }
    section = text.split("## Memory\n", 1)[1].split("\n## ", 1)[0]
    assert "a cell `host · device`" in section
    assert "**Device**: the most GPU memory the backend's allocator held" in section
    assert "CuPy's memory pool" in section


def test_a_backend_on_two_devices_gets_a_row_for_each():
    # torch on the CPU and on a GPU are two rows, named by their device; without the device
    # among the row keys one would overwrite the other
    results = _results(
        {
            ("numpy-vec", 32, "cpu"): [(44.0, None)],
            ("torch", 32, "cpu"): [(310.0, None)],
            ("torch", 32, "cuda:0"): [(900.0, 120.0)],
        }
    )
    text = _render(results)
    header, rows = _memory_rows(text)
    assert rows == {
        "cpu / numpy-vec": ["44 MB · —"],
        "cpu / torch": ["310 MB · —"],
        "cuda:0 / torch": ["900 MB · 120 MB"],
    }
    # and in the results tables: a sub-table per device
    assert "### device cpu" in text and "### device cuda:0" in text


def test_columns_and_rows_without_any_figure_are_left_out():
    results = _results(
        {
            ("numpy-vec", 32, "cpu"): [(44.0, None)],
            ("numpy-vec", 256, "cpu"): [(None, None)],  # e.g. a platform without VmHWM
            ("torch", 32, "cpu"): [(310.0, None)],
            ("torch", 256, "cpu"): [(None, None)],
            ("keras", 256, "cpu"): [(None, None)],
        }
    )
    header, rows = _memory_rows(_render(results))
    assert header == ["backend", "batch 32"]
    assert rows == {"numpy-vec": ["44 MB"], "torch": ["310 MB"]}


def test_no_memory_figure_no_table_and_no_memory_verdict():
    results = _results(
        {("numpy-vec", 32, "cpu"): [(None, None)], ("torch", 32, "cpu"): [(None, None)]}
    )
    text = _render(results)
    assert "## Memory" not in text
    assert "memory:" not in text
    assert "## Compute" in text  # the rest renders as before


def test_old_folders_without_the_memory_columns_still_render(tmp_path):
    results = _results(
        {("numpy-vec", 32, "cpu"): [(44.0, None)], ("keras", 32, "cpu"): [(900.0, None)]}
    )
    old = results.drop(columns=["peak_host_mb", "peak_device_mb"])
    folder = write_run(tmp_path / "old", old, None, ENV)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # columns added since the folder was written: no word
        loaded, curves = load_run(folder)
    assert loaded["peak_host_mb"].isna().all()
    text = render_summary(loaded, curves, ENV)
    assert "## digits · loss cce" in text
    assert "## Memory" not in text and "memory:" not in text
    # the summary alone, from a frame without the columns, too
    assert "## Memory" not in render_summary(old, pd.DataFrame(), ENV)
    assert tables.summarize(old)["peak_host_mb_median"].isna().all()


def test_a_folder_without_an_axis_is_warned_about(tmp_path):
    results = _results({("numpy-vec", 32, "cpu"): [(44.0, None)]})
    folder = write_run(
        tmp_path / "odd", results.drop(columns=["hidden", "peak_host_mb"]), None, ENV
    )
    with pytest.warns(UserWarning, match=r"no column\(s\) hidden; read as empty"):
        load_run(folder)


def test_the_examples_render_with_their_host_memory():
    folders = sorted(p for p in EXAMPLES.glob("*") if (p / "results.csv").is_file())
    if not folders:
        pytest.skip("no example run folders in results/examples")
    for folder in folders:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results, curves = load_run(folder)
        text = render_summary(results, curves, load_env(folder))
        ok = results[results["status"] == "ok"]
        assert ("## Memory" in text) == bool(ok["peak_host_mb"].notna().any()), folder
        if ok["peak_device_mb"].notna().any() if "peak_device_mb" in ok else False:
            assert "**Device**" in text, folder
        else:
            assert "**Device**" not in text, folder


# --------------------------------------------------------------------------- the verdict


def test_more_than_twice_the_memory_is_named_in_the_verdict():
    assert MEMORY_SPLIT == 2.0
    results = _results(
        {
            ("numpy-vec", 32, "cpu"): [(470.0, None)],
            ("torch", 32, "cpu"): [(893.0, None)],  # 1.9×: not worth a word
            ("keras", 32, "cpu"): [(1175.0, None)],  # 2.5×
        }
    )
    line = _memory_line(_render(results))
    assert line == (
        "- **digits**, memory: keras used 2.5× the host memory of numpy-vec (1175 vs 470 MB peak)."
    )
    assert "torch" not in line


def test_within_twice_no_memory_line():
    results = _results(
        {
            ("numpy-vec", 32, "cpu"): [(470.0, None)],
            ("torch", 32, "cpu"): [(893.0, None)],  # 1.9×
            ("keras", 32, "cpu"): [(940.0, None)],  # exactly 2×: not more than
        }
    )
    assert _memory_line(_render(results)) == ""


def test_memory_verdict_over_several_cells_and_the_device():
    results = _results(
        {
            ("numpy-vec", 32, "cpu"): [(40.0, None)],
            ("numpy-vec", 256, "cpu"): [(50.0, None)],
            ("keras", 32, "cpu"): [(800.0, None)],  # 20×
            ("keras", 256, "cpu"): [(90.0, None)],  # 1.8×: one of two cells apart
            ("torch", 32, "cpu"): [(300.0, None)],
            ("torch", 256, "cpu"): [(310.0, None)],
        }
    )
    line = _memory_line(_render(results))
    assert "keras used 20× the host memory of numpy-vec (800 vs 40 MB peak in 1 of 2 cells)" in line
    assert "torch 6.2–7.5× (300–310 vs 40–50 MB)" in line
    assert line.index("keras") < line.index("torch")  # the largest ratio first

    gpu = _results(
        {
            ("torch", 32, "cuda:0"): [(900.0, 120.0)],
            ("keras", 32, "cuda:0"): [(1800.0, 2050.0)],
        }
    )
    line = _memory_line(_render(gpu))
    assert "keras used 17× the device memory of torch (2050 vs 120 MB peak)" in line
    assert "host memory" not in line  # 2.0× on the host: not more than twice


def test_speed_is_compared_within_one_device_and_the_device_named():
    results = _results(
        {
            ("numpy-vec", 32, "cpu"): [(40.0, None)],
            ("keras", 32, "cpu"): [(800.0, None)],
            ("torch", 32, "cuda:0"): [(900.0, 120.0)],
            ("keras", 32, "cuda:0"): [(1800.0, 2050.0)],
        }
    )
    results.loc[results["backend"] == "numpy-vec", ["epoch_s", "epoch_s_min", "epoch_s_max"]] = [
        0.004,
        0.0039,
        0.0041,
    ]
    verdict = _render(results).split("**How to read", 1)[0]
    # one repeat and no curves: too few samples for an interval on either device, each named
    assert "- **digits**, speed on cpu: at batch 32 too few steady epochs" in verdict
    assert "(numpy-vec 2.50× (too few samples for an interval) keras" in verdict
    assert "- **digits**, speed on cuda:0: at batch 32 too few steady epochs" in verdict


def test_memory_is_compared_only_within_one_device():
    # numpy-vec on the CPU and torch on the GPU are not the same cell: host memory is compared
    # per device, and the device named when the dataset ran on several
    results = _results(
        {
            ("numpy-vec", 32, "cpu"): [(40.0, None)],
            ("keras", 32, "cpu"): [(800.0, None)],
            ("torch", 32, "cuda:0"): [(900.0, 120.0)],
            ("keras", 32, "cuda:0"): [(1800.0, 2050.0)],
        }
    )
    line = _memory_line(_render(results))
    assert "on cpu, keras used 20× the host memory of numpy-vec (800 vs 40 MB peak)" in line
    assert "on cuda:0, keras used 17× the device memory of torch" in line
    assert "the host memory of torch" not in line  # 2.0× on cuda:0


def test_many_backends_are_counted_past_the_named_ones():
    cells = {("numpy-vec", 32, "cpu"): [(10.0, None)]}
    for i, backend in enumerate(["keras", "torch", "jax", "sklearn", "keras-jax", "numpy-loop"]):
        cells[(backend, 32, "cpu")] = [(30.0 + 10 * i, None)]
    line = _memory_line(_render(_results(cells)))
    assert line.count("×") == 5
    assert line.endswith(", and 2 more backends 3.0–4.0×.")


# --------------------------------------------------------------------------- helpers


def test_format_mb():
    assert format_mb(1450.4) == "1450 MB"
    assert format_mb(99.99) == "100 MB"
    assert format_mb(94.14) == "94.1 MB"
    assert format_mb(0.5) == "0.5 MB"
    assert format_mb(float("nan")) == "—"
    assert format_mb(None) == "—"
    assert format_mb(470.0, unit=False) == "470"


def test_the_device_is_named_once_among_the_constants():
    results = _results(
        {("numpy-vec", 32, "cpu"): [(44.0, None)], ("torch", 32, "cpu"): [(300.0, None)]}
    )
    head = _render(results).split("**How to read this.**", 1)[0]
    assert head.count("device cpu") == 1
