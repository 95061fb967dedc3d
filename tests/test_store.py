"""The run folder: unique creation, locking, appends, and recovery of cut-off files."""

import csv
import json

import pytest

from bench.errors import NotARunError, UsageError
from bench.store.folder import RunStore
from bench.store.schema import CURVE_COLUMNS, RESULT_COLUMNS


def _row(cell_id, repeat=0, **extra):
    return {
        "run_id": "r",
        "cell_id": cell_id,
        "repeat": repeat,
        "status": "ok",
        "error": "line one\nline two",
        "threads_effective": {"openblas": 2},
        "epoch_s": 0.25,
        "test_acc": float("nan"),
        **extra,
    }


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_runs_started_together_get_separate_folders(tmp_path):
    stores = [RunStore.create(tmp_path, "same name") for _ in range(3)]
    paths = [s.path for s in stores]
    assert len(set(paths)) == 3 and all(p.parent == tmp_path for p in paths)
    assert paths[0].name.endswith("-same-name") and paths[1].name.endswith("-same-name-2")
    for s in stores:
        assert _read(s.results_path) == [] and s.results_path.read_text().startswith("run_id,")
        s.close()


def test_a_folder_in_use_is_refused(tmp_path):
    store = RunStore.create(tmp_path, "x")
    store.write_env({"run_id": "x"})
    with pytest.raises(UsageError, match="in use by another bench process"):
        RunStore.open(store.path)
    store.close()
    RunStore.open(store.path).close()


def test_append_and_recover(tmp_path):
    store = RunStore.create(tmp_path, "x")
    store.write_env({"run_id": "x"})
    store.append_cell(_row("a"), [{"cell_id": "a", "repeat": 0, "epoch": 1}])
    store.append_cell(_row("b", repeat=1), [])
    rows = _read(store.results_path)
    assert [(r["cell_id"], r["repeat"]) for r in rows] == [("a", "0"), ("b", "1")]
    assert rows[0]["error"] == "line one line two"  # one line per row
    assert json.loads(rows[0]["threads_effective"]) == {"openblas": 2}
    assert rows[0]["test_acc"] == "" and float(rows[0]["epoch_s"]) == 0.25
    assert list(rows[0]) == list(RESULT_COLUMNS)
    assert store.recover() == {("a", 0), ("b", 1)}
    store.close()


def test_cut_off_results_and_orphan_curves_are_repaired(tmp_path):
    store = RunStore.create(tmp_path, "x")
    store.write_env({"run_id": "x"})
    store.append_cell(_row("a"), [{"cell_id": "a", "repeat": 0, "epoch": 1}])
    # a cell interrupted mid-way: curves written, no result row; then power loss mid-line
    store.append_cell(_row("b"), [{"cell_id": "b", "repeat": 0, "epoch": 1}])
    with open(store.curves_path, "a") as f:
        f.write(",".join(["r", "c"] + ["0"] * (len(CURVE_COLUMNS) - 2)) + "\n")
    text = store.results_path.read_text()
    store.results_path.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 40])
    store.close()
    again = RunStore.open(store.path)
    assert again.recover() == {("a", 0)}
    assert [r["cell_id"] for r in _read(again.results_path)] == ["a"]
    assert again.results_path.read_text().endswith("\n")
    # curves of the cut row's cell and of the cell that never finished are gone
    assert [r["cell_id"] for r in _read(again.curves_path)] == ["a"]
    again.close()


def test_unwritable_output_is_an_error_before_anything_runs(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot create the results folder"):
        RunStore.create(blocker / "sub", "x")


def test_open_requires_a_run_folder(tmp_path):
    with pytest.raises(NotARunError, match="no such folder"):
        RunStore.open(tmp_path / "nope")
    with pytest.raises(NotARunError, match="no env.json"):
        RunStore.open(tmp_path)
