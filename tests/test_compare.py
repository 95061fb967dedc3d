"""`bench compare BASE NEW`: matched cells, intervals, the U test's reach, accuracy changes,
differences of machine and software, the output files and the --fail-above gate."""

import json

import numpy as np
import pytest

from bench.cli import main
from bench.report import compare
from bench.store.folder import RunStore

ENV = {
    "status": "complete",
    "machine": {"cpu": "Test CPU", "cores": 2, "platform": "Linux"},
    "python": "3.11.9",
    "versions": {"numpy": "2.1.0"},
    "blas": "openblas 0.3.27",
    "threads": 1,
}


def make_run(root, name, times, acc=None, epochs=9, seed=0, env=None):
    """A run folder written through bench.store: for each (backend, batch) of `times` (its
    epoch time in seconds), one repeat of `epochs` steady epochs jittered by 2% after a
    warm-up epoch; test accuracy `acc[(backend, batch)]` (0.95 by default)."""
    rng = np.random.default_rng(seed)
    store = RunStore.create(root, name)
    store.write_env({**ENV, **(env or {}), "run_id": name, "name": name})
    for (backend, bs), seconds in times.items():
        keys = dict(
            run_id=name,
            cell_id=f"{backend}-{bs}",
            part="main",
            dataset="digits",
            backend=backend,
            loss="cce",
            optimizer="sgd",
            lr=0.1,
            batch_size=bs,
            hidden="32",
            activation="relu",
            epochs=epochs + 1,
            dtype="float32",
            threads=1,
            device="cpu",
            repeat=0,
        )
        steady = seconds * np.exp(rng.normal(0, 0.02, epochs))
        all_epochs = [2 * seconds, *steady]
        curves = [
            dict(keys, epoch=i, epoch_s=t, elapsed_s=sum(all_epochs[:i]), epoch_loss=0.5)
            for i, t in enumerate(all_epochs, 1)
        ]
        a = (acc or {}).get((backend, bs), 0.95)
        result = dict(
            keys,
            status="ok",
            epochs_run=epochs + 1,
            epoch_s=float(np.median(steady)),
            first_epoch_s=2 * seconds,
            test_acc=a,
        )
        store.append_cell(result, curves)
    store.close()
    return store.path


TIMES = {("numpy-vec", 32): 0.010, ("torch", 32): 0.020, ("numpy-vec", 256): 0.004}


def test_identical_runs_show_no_change_and_pass_the_gate(tmp_path, capsys):
    base = make_run(tmp_path, "base", TIMES, seed=1)
    new = make_run(tmp_path, "new", TIMES, seed=2)
    out = tmp_path / "out"
    code = main(["compare", str(base), str(new), "--fail-above", "10", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "3 matched cells: 3 ~" in text
    assert "differ in" not in text and "different machines" not in text
    table = json.loads((out / "compare.json").read_text())
    assert {c["change"] for c in table["cells"]} == {"~"}
    assert all(c["lo"] < 1 < c["hi"] for c in table["cells"])
    assert (out / "compare.csv").read_text().startswith("part,dataset,backend")
    assert (out / "compare.md").read_text() == text


def test_a_slower_backend_fails_the_gate_and_github_json_follows_it(tmp_path, capsys):
    base = make_run(tmp_path, "base", TIMES, seed=1)
    slower = {**TIMES, ("torch", 32): 0.030}  # torch 1.5x slower
    new = make_run(tmp_path, "new", slower, seed=2)
    gh = tmp_path / "bench.json"
    code = main(["compare", str(base), str(new), "--fail-above", "10", "--github-json", str(gh)])
    text = capsys.readouterr().out
    assert code == 1
    torch = next(line for line in text.splitlines() if line.startswith("| torch"))
    assert "slower" in torch and "1.5" in torch
    entries = json.loads(gh.read_text())
    assert {e["unit"] for e in entries} == {"s/epoch"}
    assert any(
        "torch" in e["name"] and e["value"] == pytest.approx(0.030, rel=0.05) for e in entries
    )
    # beyond 10% but not beyond 60%: the gate is the percentage given
    assert main(["compare", str(base), str(new), "--fail-above", "60"]) == 0
    # a faster run passes whatever the threshold
    assert main(["compare", str(new), str(base), "--fail-above", "1"]) == 0


def test_too_few_samples_name_no_change_and_the_u_test_only_where_it_can_reach(tmp_path):
    base = make_run(tmp_path, "base", TIMES, epochs=3, seed=1)
    new = make_run(tmp_path, "new", {**TIMES, ("torch", 32): 0.030}, epochs=3, seed=2)
    c = compare.compare_runs(base, new)
    assert set(c.table["change"]) == {"too few samples"}
    assert c.table["p_value"].isna().all()  # 3 against 3 cannot reach p < 0.002
    assert c.failures(0.10).empty
    base = make_run(tmp_path, "base9", TIMES, epochs=9, seed=1)
    new = make_run(tmp_path, "new9", {**TIMES, ("torch", 32): 0.030}, epochs=9, seed=2)
    c = compare.compare_runs(base, new)
    torch = c.table[c.table["backend"] == "torch"].iloc[0]
    assert torch["p_value"] < compare.U_LEVEL and torch["change"] == "slower"


def test_an_accuracy_drop_fails_the_gate_but_one_within_tolerance_does_not(tmp_path):
    base = make_run(tmp_path, "base", TIMES, seed=1)
    worse = make_run(tmp_path, "worse", TIMES, acc={("torch", 32): 0.90}, seed=2)
    c = compare.compare_runs(base, worse)
    assert list(c.failures(0.10)["backend"]) == ["torch"]
    close = make_run(tmp_path, "close", TIMES, acc={("torch", 32): 0.945}, seed=3)
    assert compare.compare_runs(base, close).failures(0.10).empty


def test_different_machines_and_versions_are_named_at_the_top(tmp_path, capsys):
    base = make_run(tmp_path, "base", TIMES, seed=1)
    env = {
        "machine": {"cpu": "Other CPU", "cores": 8, "platform": "Linux"},
        "versions": {"numpy": "2.2.0"},
    }
    new = make_run(tmp_path, "new", TIMES, seed=2, env=env)
    assert main(["compare", str(base), str(new)]) == 0
    text = capsys.readouterr().out
    head = text.split("|", 1)[0]
    assert "machine cpu: Test CPU → Other CPU" in head
    assert "machine cores: 2 → 8" in head
    assert "numpy version: 2.1.0 → 2.2.0" in head
    assert "compare the machines as well as the code" in head


def test_unmatched_cells_are_listed_and_a_missing_folder_is_a_usage_error(tmp_path, capsys):
    base = make_run(tmp_path, "base", TIMES, seed=1)
    new = make_run(tmp_path, "new", {("numpy-vec", 32): 0.01, ("jax", 32): 0.01}, seed=2)
    assert main(["compare", str(base), str(new)]) == 0
    text = capsys.readouterr().out
    assert "2 cell(s) only in the base run" in text and "1 cell(s) only in the new run" in text
    assert main(["compare", str(base), str(tmp_path / "nope")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_accuracy_change_over_repeats_is_judged_against_their_noise():
    steady = compare._accuracy_change(
        np.array([0.95, 0.951, 0.949]), np.array([0.93, 0.931, 0.929])
    )
    assert steady["accuracy"] == "lower" and steady["acc_hi"] < 0
    noisy = compare._accuracy_change(np.array([0.90, 0.95, 1.0]), np.array([0.86, 0.93, 0.99]))
    assert noisy["accuracy"] == "~" and noisy["acc_lo"] < 0 < noisy["acc_hi"]
    one = compare._accuracy_change(np.array([0.95]), np.array([0.945]))
    assert one["accuracy"] == "~"  # a single repeat: within ACCURACY_TOLERANCE
