"""A report that cannot be fooled by its input: values that are not finite, negative times,
text in numeric fields and absurd magnitudes are named per row and left out of the figures;
a resume quarantines such rows as damaged; env.json's warnings reach summary.md."""

import numpy as np
import pytest
from test_compare import TIMES, make_run

from bench.report.loading import load_run
from bench.report.write import write_report
from bench.store.csvfile import append_rows
from bench.store.folder import RunStore
from bench.store.schema import RESULT_COLUMNS
from bench.store.values import finite_numbers, refusal


def _edit(path, cell_id, column, text):
    """Replace `column` of the results.csv row of `cell_id` with `text`, as a hand edit."""
    with path.open(encoding="utf-8", newline="") as f:
        lines = f.read().split("\r\n")
    header = lines[0].split(",")
    i = header.index(column)
    for n, line in enumerate(lines):
        fields = line.split(",")
        if len(fields) > 1 and fields[header.index("cell_id")] == cell_id:
            fields[i] = text
            lines[n] = ",".join(fields)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("\r\n".join(lines))


@pytest.mark.parametrize(
    ("column", "text", "why"),
    [
        ("epoch_s", "-0.0", "is a negative time"),
        ("test_acc", "inf", "is not finite"),
        ("epoch_s", "1e308", "is an absurd time"),
        ("test_acc", "0.9O8", "is not a number"),
        ("test_acc", "1.5", "is an accuracy outside [0, 1]"),
    ],
)
def test_a_bad_value_is_named_left_out_and_the_report_does_not_crash(tmp_path, column, text, why):
    run = make_run(tmp_path, "bad", TIMES, seed=1)
    _edit(run / "results.csv", "torch-32", column, text)
    with pytest.warns(UserWarning, match="cannot be measurements"):
        results, _ = load_run(run)
        write_report(run, plots=False)
    torch = results[results["backend"] == "torch"].iloc[0]
    assert np.isnan(torch[column])  # left out of the figures
    assert results[column].dtype == np.float64
    summary = (run / "summary.md").read_text(encoding="utf-8")
    assert "Values left out of the figures" in summary
    assert "cell torch-32" in summary and f"{column} = '{text}' {why}" in summary
    assert "-0×" not in summary and "inf" not in summary.split("Values left out")[0]
    assert "1e+308" not in summary.replace("'1e308'", "")


def test_a_resume_quarantines_a_row_with_a_bad_value(tmp_path):
    run = make_run(tmp_path, "bad", TIMES, seed=1)
    _edit(run / "results.csv", "torch-32", "epoch_s", "-0.0")
    notes = []
    store = RunStore.open(run)
    finished = store.recover(note=notes.append)
    store.close()
    assert ("torch-32", 0) not in finished and ("numpy-vec-32", 0) in finished
    assert "-0.0" in (run / "results.csv.damaged").read_text(encoding="utf-8")
    assert any("epoch_s = '-0.0' is a negative time" in n for n in notes)
    assert not any(r.startswith("torch-32") for r in (run / "curves.csv").read_text().split("\n"))


def test_refusal_rules():
    assert refusal("epoch_s", "0.01") is None and refusal("epoch_s", "") is None
    assert refusal("epoch_s", "nan") is None  # missing, not bad
    assert refusal("epoch_s", "0") == "is an epoch time of zero"
    assert refusal("stage_s", "0") is None  # a cell may stage nothing
    assert refusal("test_loss", "inf") is None  # a diverged cell's loss
    assert refusal("batch_size", "3.5") == "is not a whole number"
    assert refusal("backend", "0.9O8") is None  # text columns hold text
    assert refusal("samples_per_s", "1e300").startswith("is of an absurd magnitude")


def test_numpy_floats_are_written_as_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(",".join(RESULT_COLUMNS) + "\r\n", encoding="utf-8")
    append_rows(path, RESULT_COLUMNS, [{"cell_id": "a", "repeat": 0, "epoch_s": np.float64(0.5)}])
    assert ",0.5," in path.read_text(encoding="utf-8")


def test_warnings_recorded_in_env_json_appear_in_summary(tmp_path):
    warning = "--threads 64 is above the 2 cores of this machine: the timings measure contention"
    env = {"sessions": [{"index": 0, "warnings": [warning]}]}
    run = make_run(tmp_path, "warned", TIMES, seed=1, env=env)
    write_report(run, plots=False)
    summary = (run / "summary.md").read_text(encoding="utf-8")
    assert "Warnings recorded by the run" in summary and warning in summary


def test_a_list_columns_value_gives_its_finite_numbers_only():
    assert finite_numbers([0.5, 1, float("nan"), float("inf"), "2", True, None]) == [0.5, 1.0]
    assert finite_numbers('[0.001, "x", -1, Infinity]') == [0.001, -1.0]  # as results.csv holds it
    assert finite_numbers("not json") == [] and finite_numbers(None) == []
    assert finite_numbers("3.5") == []  # a number is not a list
