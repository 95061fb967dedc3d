"""Paired rounds (`--interleave`, bench.run.interleave): the backends of a configuration run
epoch k in turn, one epoch at a time, in a seeded order within each round, in workers kept
alive side by side; the results are those of a run that is not interleaved; a failing
backend drops out while the others go on; a resume in the middle of a configuration runs its
unfinished cells, interleaved among themselves."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
from helpers import read_curves, read_env, read_rows
from test_executors import EXPECTED, OUTCOMES, TIMEOUT_S

from bench.errors import UsageError
from bench.run.executors import check_scheduler, local_executor
from bench.run.interleave import InterleavedExecutor, configurations, round_orders
from bench.run.runner import execute
from bench.sweep.build import build_sweep, expand

LOGGED = Path(__file__).resolve().parent / "interleave_backends.py"
A, B, C = (f"{LOGGED}:{name}" for name in "ABC")
TIMES = ("epoch_s", "elapsed_s", "cell_s", "build_s", "stage_s", "first_epoch_s", "train_s",
         "epoch_s_min", "epoch_s_max", "epoch_s_spread", "noisy", "samples_per_s", "gflops",
         "predict_s", "eval_s", "roofline", "peak_host_mb", "peak_device_mb", "started_at",
         "finished_at", "run_id", "time_to_target_s", "extra_epoch_s")  # fmt: skip


def _quiet(_text):
    pass


def _sweep(backends, epochs=3, interleave=True, **more):
    return build_sweep(
        {
            "title": "interleave",
            "datasets": ["synthetic:n=120,d=6,k=3"],
            "backends": list(backends),
            "losses": ["cce"],
            "batch_sizes": ["32"],
            "hidden": ["8"],
            "epochs": [str(epochs)],
            "threads": ["1"],
            "interleave": interleave,
            **more,
        }
    )


def _log(path: Path) -> list[tuple[str, int, str]]:
    """(backend, pid, start|end) per line of the backends' epoch log."""
    lines = path.read_text().split("\n") if path.exists() else []
    return [(n, int(p), what) for n, p, what in (line.split() for line in lines if line)]


def _rounds(events) -> list[list[str]]:
    """The epochs, one at a time (every start is followed by its own end), as the names of
    the backends in each round (`per_round` epochs a round)."""
    epochs = []
    for (name, pid, what), (name2, pid2, what2) in zip(events[::2], events[1::2]):
        assert (what, what2) == ("start", "end") and (name, pid) == (name2, pid2)
        epochs.append((name, pid))
    assert len(events) == 2 * len(epochs)
    return epochs


def test_rounds_alternate_one_epoch_at_a_time_in_seeded_order(tmp_path, monkeypatch):
    log = tmp_path / "epochs.log"
    monkeypatch.setenv("INTERLEAVE_LOG", str(log))  # the workers' environment
    sweep = _sweep([A, B], epochs=12)
    run_dir, status = execute(sweep, out=tmp_path / "runs", progress=False, note=_quiet)
    assert status == "complete"
    epochs = _rounds(_log(log))
    assert len(epochs) == 24
    rounds = [epochs[i : i + 2] for i in range(0, 24, 2)]
    # each round runs each backend's epoch once, in an order drawn from the configuration's
    # seeded generator: the same orders every time the run is made
    cells = expand(sweep)
    orders = round_orders(cells)
    expected = [[cells[i].backend[-1] for i in orders.permutation(2)] for _ in rounds]
    assert [[name for name, _ in r] for r in rounds] == expected
    assert {tuple(order) for order in expected} == {("A", "B"), ("B", "A")}  # randomised
    # one worker per backend, alive side by side from the first round to the last
    pids = {name: {pid for n, pid in epochs if n == name} for name in "AB"}
    assert all(len(p) == 1 for p in pids.values()) and pids["A"] != pids["B"]
    # curves.csv: each epoch's round; results.csv: one ok row per backend
    curves = read_curves(run_dir)
    assert len(curves) == 24 and all(c["round"] == c["epoch"] for c in curves)
    assert sorted(r["status"] for r in read_rows(run_dir)) == ["ok", "ok"]
    assert read_env(run_dir)["sweep"]["interleave"] is True


def test_cells_group_by_configuration():
    sweep = build_sweep(
        {
            "datasets": ["synthetic:n=120,d=6,k=3"],
            "backends": ["numpy-vec", "numpy-loop"],
            "losses": ["cce"],
            "batch_sizes": ["8", "32"],
            "threads": ["1"],
            "repeats": 2,
        }
    )
    groups = configurations(expand(sweep))
    assert len(groups) == 4  # two batch sizes x two repeats, each with both backends
    for group in groups:
        assert sorted(c.backend for c in group) == ["numpy-loop", "numpy-vec"]
        assert len({dataclasses.replace(c, backend="") for c in group}) == 1


def test_interleaved_results_are_those_of_a_run_one_cell_after_another(tmp_path):
    runs = {}
    for interleave in (True, False):
        sweep = _sweep(["numpy-vec", "numpy-loop"], interleave=interleave)
        run_dir, status = execute(sweep, out=tmp_path / str(interleave), progress=False,
                                  note=_quiet)  # fmt: skip
        assert status == "complete"
        runs[interleave] = run_dir

    def same(rows, key):
        return {row[key]: {k: v for k, v in row.items() if k not in TIMES} for row in rows}

    rows = {k: read_rows(d) for k, d in runs.items()}
    assert same(rows[True], "backend") == same(rows[False], "backend")
    assert all(r["status"] == "ok" and float(r["test_acc"]) > 0 for r in rows[True])
    curves = {k: read_curves(d) for k, d in runs.items()}
    keyed = {
        k: {(c["backend"], c["epoch"]): {n: v for n, v in c.items() if n not in TIMES + ("round",)}
            for c in rows_}
        for k, rows_ in curves.items()
    }  # fmt: skip
    assert keyed[True] == keyed[False] and len(keyed[True]) == 6
    assert {c["round"] for c in curves[False]} == {""}  # not interleaved: no rounds


def test_a_failing_backend_drops_out_and_the_others_go_on(tmp_path, monkeypatch):
    log = tmp_path / "epochs.log"
    monkeypatch.setenv("INTERLEAVE_LOG", str(log))
    backends = [*EXPECTED, A]
    sweep = _sweep(backends, epochs=4, timeout=TIMEOUT_S, datasets=["synthetic:n=200"])
    run_dir, status = execute(sweep, out=tmp_path, progress=False, note=_quiet)
    assert status == "complete"
    found = {}
    for row in read_rows(run_dir):
        error = row["error"]
        if "(traceback: " in error:
            error = error.split("(traceback: ")[0] + "(traceback: *)"
        found[row["backend"]] = (row["status"], error)
    # every outcome reads as on a run one cell after another (tests/test_executors.py)
    assert found == {**EXPECTED, A: ("ok", "")}
    assert [n for n, _ in _rounds(_log(log))] == ["A"] * 4  # A ran all its rounds
    epochs = {}
    for c in read_curves(run_dir):
        epochs.setdefault(c["backend"], []).append(int(c["round"]))
    assert epochs[A] == epochs["numpy-vec"] == epochs[f"{OUTCOMES}:Ok"] == [1, 2, 3, 4]
    assert epochs[f"{OUTCOMES}:Diverges"] == [1]  # it ended in round 1


def _drop_rows(run_dir: Path, backends) -> None:
    """Remove `backends`' rows from results.csv, as if the run had stopped before they were
    written (their curve rows are dropped by the resume's recovery)."""
    path = run_dir / "results.csv"
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, [r for r in reader if r["backend"] not in backends]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_resume_in_the_middle_of_a_configuration_interleaves_the_unfinished_cells(
    tmp_path, monkeypatch
):
    log = tmp_path / "epochs.log"
    monkeypatch.setenv("INTERLEAVE_LOG", str(log))
    run_dir, status = execute(_sweep([A, B, C], epochs=4), out=tmp_path / "runs",
                              progress=False, note=_quiet)  # fmt: skip
    assert status == "complete"
    kept = next(r for r in read_rows(run_dir) if r["backend"] == A)
    _drop_rows(run_dir, {B, C})
    log.unlink()
    run_dir, status = execute(_sweep([A, B, C], epochs=4), resume=run_dir, progress=False,
                              note=_quiet)  # fmt: skip
    assert status == "complete"
    epochs = _rounds(_log(log))
    # only B and C ran again, in rounds of their own: B_k and C_k before either's epoch k+1
    assert len(epochs) == 8
    for k in range(4):
        assert sorted(name for name, _ in epochs[2 * k : 2 * k + 2]) == ["B", "C"]
    rows = read_rows(run_dir)
    assert sorted(r["backend"][-1] for r in rows) == ["A", "B", "C"]
    assert next(r for r in rows if r["backend"] == A) == kept  # the finished cell stays
    rounds = {}
    for c in read_curves(run_dir):
        rounds.setdefault(c["backend"][-1], []).append(c["round"])
    assert rounds == {name: ["1", "2", "3", "4"] for name in "ABC"}


class _StopAfterFirst:
    """A sink whose first finished cell is followed by Ctrl-C."""

    def __init__(self):
        self.finished_cells = []

    def started(self, cell):
        pass

    def epoch(self, record):
        pass

    def finished(self, result):
        self.finished_cells.append(result)
        raise KeyboardInterrupt


def test_ctrl_c_leaves_the_running_cells_unrecorded_and_their_workers_gone(tmp_path):
    from bench.run.executors import Job
    from bench.run.prepare import prepare_data

    sweep = _sweep(["numpy-vec", f"{OUTCOMES}:Diverges", "numpy-loop"], epochs=3)
    cells = expand(sweep)
    refs = prepare_data(cells, None, tmp_path / "data", _quiet)
    executor = InterleavedExecutor(tmp_path / "logs")
    sink = _StopAfterFirst()
    try:
        with pytest.raises(KeyboardInterrupt):
            executor.run(cells, Job(sweep, refs, "t/0"), sink)
        # the diverged cell ended in round 1; the two others were running and are dropped
        assert [r.status for r in sink.finished_cells] == ["diverged"]
        # their workers are gone; the diverged cell's (it finished) stays for the next cells
        assert {k[0] for k in executor.pool.workers} == {f"{OUTCOMES}:Diverges"}
    finally:
        executor.close()


def test_interleave_is_a_setting_of_this_machine_only(tmp_path):
    sweep = _sweep(["numpy-vec"])
    assert isinstance(local_executor(sweep, tmp_path), InterleavedExecutor)
    assert not isinstance(local_executor(_sweep(["numpy-vec"], interleave=False), tmp_path),
                          InterleavedExecutor)  # fmt: skip
    check_scheduler(sweep, None)
    with pytest.raises(UsageError, match="--interleave .* cannot be used with --scheduler"):
        check_scheduler(sweep, "local:2")
    assert _sweep(["numpy-vec"], interleave=False).interleave is False
    assert build_sweep({}).interleave is False  # off unless asked for
