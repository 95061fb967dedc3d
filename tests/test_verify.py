"""`bench verify`: its cases reach every optimiser path, its reference (the textbook MLP,
impls/reference.py) is right, it catches a fault confined to one path and a NaN, it leaves
nothing behind, and `bench run --verify` stores what it measured in env.json."""

import numpy as np
import pytest
from helpers import read_env, run_bench

from bench.check import cases, verify
from impls import LOSS_NAMES, MLPSpec, init_params, make_model, reference
from impls.spec import ACTIVATION_NAMES, OUTPUT_NAMES


def test_cases_cover_every_optimiser_path_loss_batch_and_dtype():
    checked = cases.all_cases()
    settings = [cases.OPTIMIZERS[c.optimizer] for c in checked]
    paths = {
        (s["optimizer"], bool(s.get("momentum")), bool(s.get("weight_decay"))) for s in settings
    }
    assert paths == {
        ("sgd", False, False),  # plain SGD: where a backend may take a shortcut
        ("sgd", False, True),
        ("sgd", True, False),
        ("sgd", True, True),
        ("adam", False, False),
        ("adam", False, True),
    }
    assert {c.loss for c in checked} == set(LOSS_NAMES)
    assert {c.activation for c in checked} == set(ACTIVATION_NAMES)
    assert {c.output for c in checked} == set(OUTPUT_NAMES)
    assert {c.dtype for c in checked} == {"float32", "float64"}
    assert 1 in {c.batch_size for c in checked}
    short = [b for b in {c.batch_size for c in checked} if b > 1]
    assert short and all(cases.N % b for b in short)  # a short last batch every epoch
    # the full product: every path for every loss, batch and dtype
    per_path = {(c.loss, c.output, c.batch_size, c.dtype) for c in checked}
    assert len(checked) == len(per_path) * len(cases.OPTIMIZERS)


@pytest.mark.parametrize("network", cases.NETWORKS, ids=lambda n: "-".join(n))
def test_reference_step_is_the_gradient_of_the_objective(network):
    """One full-batch plain-SGD step of the reference equals params - lr * the central-
    difference gradient of the mean loss plus the decay term (float64)."""
    loss, act, out = network
    case = cases.Case(loss, act, out, "sgd+decay", 12, "float64")
    spec = MLPSpec(**case.spec_kwargs())
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 64))
    Y = np.eye(10)[rng.integers(0, 10, 12)]
    params = init_params(spec, seed=2)
    stepped, _, _ = cases.reference_train(case, params, X, Y, [np.arange(12)])
    lr, h = cases.OPTIMIZERS[case.optimizer]["lr"], 1e-6
    for layer, (W, b) in enumerate(params):
        for array, after in ((W, stepped[layer][0]), (b, stepped[layer][1])):
            for index in [tuple(rng.integers(0, s) for s in array.shape) for _ in range(4)]:
                grads = []
                for sign in (1, -1):
                    shifted = [(w.copy(), c.copy()) for w, c in params]
                    target = shifted[layer][0 if array is W else 1]
                    target[index] += sign * h
                    grads.append(reference.objective(shifted, X, Y, spec))
                numeric = (grads[0] - grads[1]) / (2 * h)
                assert after[index] == pytest.approx(array[index] - lr * numeric, abs=1e-8)


def test_a_nan_is_a_failure_not_a_pass():
    """max() and `>` let NaN through: a result holding one differs by inf."""
    case = cases.all_cases()[0]
    X, Y, orders = cases.verify_data()
    textbook = cases.reference_train(case, cases.initial_params(case), X, Y, orders)
    params, proba, losses = textbook
    result = {"params": params, "proba": proba, "losses": losses}
    assert cases.difference(result, textbook) == 0.0
    for key in ("params", "proba", "losses"):
        broken = dict(result)
        if key == "params":
            broken["params"] = [(W * np.nan, b) for W, b in params[:1]] + params[1:]
        else:
            broken[key] = np.asarray(result[key]) * np.nan
        assert cases.difference(broken, textbook) == np.inf, key
    summary = verify.summarise({None: {}, "x": {case: np.inf}}, threads=1)
    assert summary["passed"] is False and summary["failed"]


class _Faulty:
    """numpy-vec with a fault confined to one path."""

    def __init__(self, spec, params, fault):
        self.inner = make_model("numpy-vec", spec, params)
        self.spec, self.fault = spec, fault

    def train_epoch(self, X, Y, batch_size, order):
        if self.fault == "short last batch dropped":
            order = order[: len(order) - len(order) % batch_size]
        if self.fault == "order shuffled in place":  # what the reference sees, if it is shared
            np.random.default_rng(0).shuffle(order)
        loss = self.inner.train_epoch(X, Y, batch_size, order)
        plain = self.spec.optimizer == "sgd" and not self.spec.momentum
        if self.fault == "plain sgd" and plain and not self.spec.weight_decay:
            self.inner.set_params([(W * (1 + 1e-3), b) for W, b in self.inner.get_params()])
        return loss

    def predict_proba(self, X):
        return self.inner.predict_proba(X)

    def get_params(self):
        return self.inner.get_params()


def _failing(fault):
    checked = [c for c in cases.all_cases() if c.dtype == "float64"]
    diffs = verify.verify_model(lambda spec, params: _Faulty(spec, params, fault), checked)
    return {c for c, d in diffs.items() if d > cases.TOLERANCE[c.dtype]}, checked


def test_a_fault_in_the_plain_sgd_path_alone_is_caught():
    failing, checked = _failing("plain sgd")
    expected = {c for c in checked if c.optimizer == "sgd"}
    assert failing == expected and len(expected) == 2 * len(cases.NETWORKS)


def test_a_fault_in_the_short_last_batch_alone_is_caught():
    failing, checked = _failing("short last batch dropped")
    assert failing == {c for c in checked if c.batch_size > 1}


def test_a_model_that_edits_its_order_in_place_cannot_fool_the_reference():
    failing, checked = _failing("order shuffled in place")
    assert failing == set(checked)


def _bench_in(tmp_path, *args):
    """`python -m bench ARGS` run in `tmp_path`, with `tmp_path/tmp` as its TMPDIR."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return run_bench(*args, cwd=tmp_path, env={"TMPDIR": str(tmp_path / "tmp")}, timeout=600)


def test_verify_prints_the_table_and_leaves_nothing_in_tmpdir(tmp_path, monkeypatch, capsys):
    import io
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = io.StringIO()
    assert verify.run_verify(threads=1, backends=["numpy-loop"], out=out) == 0
    progress = capsys.readouterr().err  # a line per backend as it starts and ends
    assert f"verify 1/1: numpy-loop, {len(cases.all_cases())} cases ..." in progress
    assert "verify 1/1: numpy-loop done in " in progress
    lines = out.getvalue().splitlines()
    rows = [line for line in lines if line.startswith(("cce ", "bce ", "mse "))]
    assert len(rows) == len(cases.all_cases()) // 2  # one row per case, both dtypes in it
    assert any(line.startswith("cce relu/softmax      sgd ") for line in rows)
    assert "all backends agree" in out.getvalue()
    assert list(tmp_path.iterdir()) == []


def test_verify_rejects_bad_threads_and_backends(tmp_path):
    for args, text in [
        (("--threads", "-3"), "--threads"),
        (("--backends", "numpy-vex"), "did you mean 'numpy-vec'"),
    ]:
        done = _bench_in(tmp_path, "verify", *args)
        assert done.returncode == 2 and text in done.stderr, done.stderr
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_run_with_verify_stores_the_measured_differences(tmp_path):
    done = _bench_in(
        tmp_path,
        "run",
        "--verify",
        "--backends",
        "numpy-vec",
        "--batch-sizes",
        "32",
        "--losses",
        "cce",
        "--lrs",
        "0.1",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--out",
        "out",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    env = read_env(tmp_path / done.stdout.strip())
    record = env["verify"]
    assert record["passed"] is True and record["failed"] == []
    assert set(record["worst"]) == {"numpy-vec"}
    for dtype, tolerance in cases.TOLERANCE.items():
        assert 0 < record["worst"]["numpy-vec"][dtype] <= tolerance
    assert record["tolerance"] == cases.TOLERANCE and record["cases"] == len(cases.all_cases())
    assert record["threads"] == 1 and record["epochs"] == cases.EPOCHS
    assert list((tmp_path / "tmp").iterdir()) == []
