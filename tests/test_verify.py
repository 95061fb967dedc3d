"""`bench verify`: its cases reach every optimiser path, its reference is right, it catches a
fault confined to one path, it leaves nothing behind, and `bench run --verify` stores what it
measured in env.json."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.check import verify
from impls import LOSS_NAMES, MLPSpec, init_params, make_model
from impls.spec import ACTIVATION_NAMES, OUTPUT_NAMES

ROOT = Path(__file__).resolve().parents[1]


def test_cases_cover_every_optimiser_path_loss_batch_and_dtype():
    cases = verify.all_cases()
    settings = [verify.OPTIMIZERS[c.optimizer] for c in cases]
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
    assert {c.loss for c in cases} == set(LOSS_NAMES)
    assert {c.activation for c in cases} == set(ACTIVATION_NAMES)
    assert {c.output for c in cases} == set(OUTPUT_NAMES)
    assert {c.dtype for c in cases} == {"float32", "float64"}
    assert 1 in {c.batch_size for c in cases}
    short = [b for b in {c.batch_size for c in cases} if b > 1]
    assert short and all(verify.N % b for b in short)  # a short last batch every epoch
    # the full product: every path for every loss, batch and dtype
    per_path = {(c.loss, c.output, c.batch_size, c.dtype) for c in cases}
    assert len(cases) == len(per_path) * len(verify.OPTIMIZERS)


def _objective(case, pairs, X, Y):
    acts, z = verify._forward(pairs, X, case.activation)
    loss, _ = verify._loss_and_delta(case.loss, case.output, z, Y)
    decay = verify.OPTIMIZERS[case.optimizer].get("weight_decay", 0.0)
    return loss.mean() + 0.5 * decay * sum((W * W).sum() for W, _ in pairs)


@pytest.mark.parametrize("network", verify.NETWORKS, ids=lambda n: "-".join(n))
def test_reference_step_is_the_gradient_of_the_objective(network):
    """One full-batch plain-SGD step of the reference equals params - lr * the central-
    difference gradient of the mean loss plus the decay term (float64)."""
    loss, act, out = network
    case = verify.Case(loss, act, out, "sgd+decay", 12, "float64")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 64))
    Y = np.eye(10)[rng.integers(0, 10, 12)]
    params = init_params(MLPSpec(**case.spec_kwargs()), seed=2)
    stepped, _, _ = verify.reference_train(case, params, X, Y, [np.arange(12)])
    lr, h = verify.OPTIMIZERS[case.optimizer]["lr"], 1e-6
    for layer, (W, b) in enumerate(params):
        for array, after in ((W, stepped[layer][0]), (b, stepped[layer][1])):
            for index in [tuple(rng.integers(0, s) for s in array.shape) for _ in range(4)]:
                grads = []
                for sign in (1, -1):
                    shifted = [(w.copy(), c.copy()) for w, c in params]
                    target = shifted[layer][0 if array is W else 1]
                    target[index] += sign * h
                    grads.append(_objective(case, shifted, X, Y))
                numeric = (grads[0] - grads[1]) / (2 * h)
                assert after[index] == pytest.approx(array[index] - lr * numeric, abs=1e-8)


class _Faulty:
    """numpy-vec with a fault confined to one path."""

    def __init__(self, spec, params, fault):
        self.inner = make_model("numpy-vec", spec, params)
        self.spec, self.fault = spec, fault

    def train_epoch(self, X, Y, batch_size, order):
        if self.fault == "short last batch dropped":
            order = order[: len(order) - len(order) % batch_size]
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
    cases = [c for c in verify.all_cases() if c.dtype == "float64"]
    diffs = verify.verify_model(lambda spec, params: _Faulty(spec, params, fault), cases)
    return {c for c, d in diffs.items() if d > verify.TOLERANCE[c.dtype]}, cases


def test_a_fault_in_the_plain_sgd_path_alone_is_caught():
    failing, cases = _failing("plain sgd")
    expected = {c for c in cases if c.optimizer == "sgd"}
    assert failing == expected and len(expected) == 2 * len(verify.NETWORKS)


def test_a_fault_in_the_short_last_batch_alone_is_caught():
    failing, cases = _failing("short last batch dropped")
    assert failing == {c for c in cases if c.batch_size > 1}


def _bench(*args, tmp_path, **kwargs):
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"), PYTHONPATH=str(ROOT))
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


def test_verify_prints_the_table_and_leaves_nothing_in_tmpdir(tmp_path, monkeypatch):
    import io
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = io.StringIO()
    assert verify.run_verify(threads=1, backends=["numpy-loop"], out=out) == 0
    lines = out.getvalue().splitlines()
    rows = [line for line in lines if line.startswith(("cce ", "bce ", "mse "))]
    assert len(rows) == len(verify.all_cases()) // 2  # one row per case, both dtypes in it
    assert any(line.startswith("cce relu/softmax      sgd ") for line in rows)
    assert "all backends agree" in out.getvalue()
    assert list(tmp_path.iterdir()) == []


def test_verify_rejects_bad_threads_and_backends(tmp_path):
    for args, text in [
        (("--threads", "-3"), "--threads"),
        (("--backends", "numpy-vex"), "did you mean 'numpy-vec'"),
    ]:
        done = _bench("verify", *args, tmp_path=tmp_path)
        assert done.returncode == 2 and text in done.stderr, done.stderr
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_run_with_verify_stores_the_measured_differences(tmp_path):
    done = _bench(
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
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    env = json.loads((tmp_path / done.stdout.strip() / "env.json").read_text())
    record = env["verify"]
    assert record["passed"] is True and record["failed"] == []
    assert set(record["worst"]) == {"numpy-vec"}
    for dtype, tolerance in verify.TOLERANCE.items():
        assert 0 < record["worst"]["numpy-vec"][dtype] <= tolerance
    assert record["tolerance"] == verify.TOLERANCE and record["cases"] == len(verify.all_cases())
    assert record["threads"] == 1 and record["epochs"] == verify.EPOCHS
    assert list((tmp_path / "tmp").iterdir()) == []
