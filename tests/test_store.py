"""The run folder: locking, appends, and recovery of cut-off files. (Runs started together,
and an output folder that cannot be made: tests/test_faults.py.)"""

import json

import pytest
from helpers import read_rows
from test_records import CURVES_CSV_HEADER, RESULTS_CSV_HEADER

import bench
from bench.errors import NotARunError, UsageError
from bench.store.folder import RunStore
from bench.store.records import CurveRow, EpochRecord, ResultRow
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
    rows = read_rows(store.results_path)
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
    assert [r["cell_id"] for r in read_rows(again.results_path)] == ["a"]
    assert again.results_path.read_text().endswith("\n")
    # curves of the cut row's cell and of the cell that never finished are gone
    assert [r["cell_id"] for r in read_rows(again.curves_path)] == ["a"]
    again.close()


def test_open_requires_a_run_folder(tmp_path):
    with pytest.raises(NotARunError, match="no such folder"):
        RunStore.open(tmp_path / "nope")
    with pytest.raises(NotARunError, match="no env.json"):
        RunStore.open(tmp_path)


# ---------------------------------------------------------------------------------------------
# only declared fields are written


def test_an_unknown_row_key_is_an_error_naming_it(tmp_path):
    store = RunStore.create(tmp_path, "x")
    with pytest.raises(ValueError, match=r"row has no field 'epoch_secs' \(did you mean 'epoch_s'"):
        store.append_cell(_row("a", epoch_secs=0.5), [])
    curve = {"cell_id": "a", "repeat": 0, "epoch": 1, "status": "ok"}
    with pytest.raises(ValueError, match="a curves.csv row has no field 'status'"):
        store.append_cell(_row("a"), [curve])
    # nothing of a rejected cell is written, its curves neither
    assert read_rows(store.results_path) == [] and read_rows(store.curves_path) == []
    store.close()


@pytest.mark.parametrize("status", ["crashed", "", None, "OK"])
def test_a_status_that_is_not_declared_is_an_error(tmp_path, status):
    store = RunStore.create(tmp_path, "x")
    with pytest.raises(ValueError, match=f"has status {status!r}, not one of ok, diverged, "):
        store.append_cell(_row("a", status=status), [])
    assert read_rows(store.results_path) == []
    store.close()


def test_records_are_written_whole(tmp_path):
    store = RunStore.create(tmp_path, "x")
    epoch = EpochRecord(epoch=1, epoch_s=0.5, elapsed_s=0.5, epoch_loss=0.7, test_acc=0.25)
    row = ResultRow(run_id="r", cell_id="a", repeat=0, status="diverged", epoch_s=0.5, noisy=False)
    store.append_cell(row, [CurveRow(run_id="r", cell_id="a", repeat=0, **epoch.as_row())])
    (written,) = read_rows(store.results_path)
    assert written["status"] == "diverged" and written["noisy"] == "False"
    assert written["epoch_s"] == "0.5" and written["test_acc"] == ""
    (curve,) = read_rows(store.curves_path)
    assert curve["test_acc"] == "0.25" and curve["train_acc"] == ""  # NaN: not evaluated
    with pytest.raises(TypeError, match="a CurveRow is not a ResultRow"):
        store.append_cell(CurveRow(cell_id="b", repeat=0, **epoch.as_row()), [])
    store.close()


def test_env_json_takes_only_declared_fields(tmp_path):
    store = RunStore.create(tmp_path, "x")
    store.write_env({"run_id": "x"})
    with pytest.raises(ValueError, match=r"env.json has no field 'matmul_gflop' \(did you mean"):
        store.update_env(matmul_gflop={})
    with pytest.raises(ValueError, match="env.json has no field 'sesions'"):
        store.write_env({"run_id": "x", "sesions": []})
    with pytest.raises(ValueError, match="env.json has no field 'colour'"):
        RunStore.write_env_field(store.path, colour="red")
    with pytest.raises(ValueError, match="env.json's status 'done' is not one of running, "):
        store.update_env(status="done")
    assert store.read_env() == {"run_id": "x"}  # nothing was written
    # a field another version wrote stays as it is, and may be written back unchanged
    store.env_path.write_text(json.dumps({"run_id": "x", "legacy": 1}))
    store.update_env(status="complete")
    store.write_env(store.read_env())
    assert store.read_env() == {"run_id": "x", "legacy": 1, "status": "complete"}
    with pytest.raises(ValueError, match="env.json has no field 'legacy'"):
        store.update_env(legacy=2)
    store.close()


def test_sessions_hosts_and_probes_are_changed_by_the_store(tmp_path):
    store = RunStore.create(tmp_path, "x")
    assert store.start_session({"command": "a", "status": "running"}, status="running") == 0
    assert store.start_session({"command": "b", "status": "running"}, status="running") == 1
    first, second = store.read_env()["sessions"]
    assert first["status"] == "interrupted" and "killed?" in first["note"]  # the lock is ours
    assert second == {"command": "b", "status": "running", "index": 1}
    store.update_session(1, {"command": "b", "status": "complete"}, status="complete")
    env = store.read_env()
    assert env["sessions"][1] == {"command": "b", "status": "complete", "index": 1}
    assert env["status"] == "complete"
    with pytest.raises(ValueError, match="env.json has no session 5"):
        store.update_session(5, {})
    store.record_cluster(1, {"h1": {"cores": 4}}, {"address": "tcp://s:8786"})
    store.record_probe("h1", 1, 2, "float32", {"median": 10.0})
    store.record_probe("h1", 1, 2, "float32", {"median": 99.0})  # the first one filed stays
    store.record_cluster(1, {"h1": {"cores": 8}}, {"address": "tcp://t:8786"})
    env = store.read_env()
    assert env["hosts"] == {
        "h1": {"cores": 8, "matmul": {"1": {"2": {"float32": {"median": 10.0}}}}}
    }
    assert env["schedulers"] == [{"session": 1, "address": "tcp://t:8786"}]
    store.close()


def test_a_folder_in_the_format_written_so_far_reads_and_resumes(tmp_path):
    """results.csv and curves.csv with the header written so far (literals), and an env.json
    from before sessions were recorded: the rows read back, a resume appends rows of the same
    shape, and the first start becomes session 0."""
    folder = tmp_path / "20250101-000000-old"
    folder.mkdir()
    old = {"run_id": "old", "cell_id": "c1", "repeat": "0", "status": "ok", "epoch_s": "0.25"}
    line = ",".join(old.get(c, "") for c in RESULTS_CSV_HEADER.split(","))
    (folder / "results.csv").write_text(f"{RESULTS_CSV_HEADER}\r\n{line}\r\n")
    old_curve = {"run_id": "old", "cell_id": "c1", "repeat": "0", "epoch": "1", "epoch_s": "0.3"}
    line = ",".join(old_curve.get(c, "") for c in CURVES_CSV_HEADER.split(","))
    (folder / "curves.csv").write_text(f"{CURVES_CSV_HEADER}\r\n{line}\r\n")
    env = {
        "run_id": "old",
        "command": "python -m bench run",
        "started_at": "2025-01-01T00:00:00+00:00",
        "status": "interrupted",
        "matmul_gflops": {"float32": 50.0},
    }
    (folder / "env.json").write_text(json.dumps(env))
    store = RunStore.open(folder)
    assert store.recover(note=pytest.fail) == {("c1", 0)}  # nothing to repair
    assert store.start_session({"command": "resume", "status": "running"}, status="running") == 1
    store.append_cell(ResultRow(run_id="old", cell_id="c2", repeat=0, status="ok", epoch_s=0.5), [])
    store.close()
    assert store.results_path.read_text().splitlines()[0] == RESULTS_CSV_HEADER
    assert [(r["cell_id"], r["epoch_s"]) for r in read_rows(folder)] == [
        ("c1", "0.25"),
        ("c2", "0.5"),
    ]
    sessions = store.read_env()["sessions"]
    assert [(s["index"], s["command"]) for s in sessions] == [(0, env["command"]), (1, "resume")]
    results, curves = bench.load_run(folder)
    assert list(results["cell_id"]) == ["c1", "c2"] and list(results["epoch_s"]) == [0.25, 0.5]
    assert list(curves["epoch_s"]) == [0.3]
