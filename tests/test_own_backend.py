"""A user's own MLP as a backend: the protocol (no base class), references by module:Class,
file.py:Class and entry point, and the conformance report on the example and on deliberately
broken variants of it, each of which the report must name at the right place."""

import io
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bench.check import conformance
from impls import MLPSpec, init_params, make_model, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "student_mlp.py")
REFERENCE = f"{EXAMPLE}:StudentMLP"


def _variant(tmp_path, name, old, new):
    """A copy of the example with one line changed (the change must apply exactly once)."""
    source = open(EXAMPLE).read()
    assert source.count(old) == 1, old
    path = tmp_path / f"{name}.py"
    path.write_text(source.replace(old, new))
    return f"{path}:StudentMLP"


def _report(reference, **options):
    out = io.StringIO()
    status = conformance.run_conformance(reference, options or None, out=out)
    text = "".join(line for line in out.getvalue().splitlines(True) if not line.startswith("@@"))
    one_step = text.split("epochs per case:")[0]
    return status, text, one_step


def test_example_has_no_base_class_and_conforms():
    cls = registry.backend_class(REFERENCE)
    assert cls.__mro__ == (cls, object)  # duck-typed: subclasses nothing
    status, text, _ = _report(REFERENCE)
    assert status == 0, text
    # 3 of the 5 (output, loss) pairs x 3 activations x 4 optimiser paths x 2 dtypes
    assert "72 of 72 cases checked pass, 48 not supported: conforms" in text
    refused = next(line for line in text.splitlines() if "relu→softmax/mse, sgd, float64" in line)
    assert "not supported  NotImplementedError: mse needs a linear output here" in refused


def test_missing_bias_gradient_is_named(tmp_path):
    ref = _variant(tmp_path, "no_bias_grad", "delta.sum(axis=0)]", "0 * delta.sum(axis=0)]")
    status, text, one_step = _report(ref, dtype=["float64"], activation=["relu"])
    assert status == 1
    assert "layer 0 bias differs" in one_step and "layer 1 bias differs" in one_step
    assert "yours did not change: is its gradient missing?" in one_step
    assert "weights differs" not in one_step  # one step: the weights' gradients are right
    first = next(line for line in text.splitlines() if "  relu→softmax/cce, sgd, float64" in line)
    assert "FAIL" in first and "leaves the tolerance at epoch 1, step 1: layer" in first


def test_relu_derivative_at_the_wrong_place_is_named(tmp_path):
    # relu' evaluated at the back-propagated signal instead of at the hidden layer's output
    ref = _variant(tmp_path, "relu_wrong_place", "* self.df(a)", "* self.df(delta @ W.T)")
    status, text, one_step = _report(ref, dtype=["float64"], activation=["relu"])
    assert status == 1
    assert "layer 0 weights differs" in one_step and "layer 0 bias differs" in one_step
    assert "layer 1" not in one_step  # the output layer's gradients come before the mistake
    assert "forward (predict_proba): ok" in one_step and "loss: ok" in one_step


def test_summed_loss_is_named(tmp_path):
    ref = _variant(
        tmp_path,
        "summed_loss",
        "loss, delta = -np.sum(y * np.log(p)) / n, (p - y) / n",
        "loss, delta = -np.sum(y * np.log(p)), p - y",
    )
    status, text, one_step = _report(ref, dtype=["float64"], activation=["relu"])
    assert status == 1
    batch = conformance.BATCH
    assert "loss: FAIL" in one_step and f": {batch}x numpy-vec's" in one_step
    assert f"yours moved {batch}× as far" in one_step
    assert (
        f"diagnosis: your step is the batch size {batch}× the contract's: the loss summed over "
        'the batch, not averaged; declare conventions = {"loss_over_batch": "sum"}' in one_step
    )
    # the other losses were written right and pass
    assert re.search(r"relu→sigmoid/bce, sgd, float64 +ok ", text)


def test_an_order_shuffled_in_place_is_caught(tmp_path):
    """A class that edits the order it is given must not change what numpy-vec trains on."""
    ref = _variant(
        tmp_path,
        "shuffles_in_place",
        "        total = 0.0\n",
        "        np.random.default_rng(0).shuffle(order)\n        total = 0.0\n",
    )
    status, text, _ = _report(ref, dtype=["float64"], activation=["relu"], loss=["cce"])
    assert status == 1, text
    assert "your class wrote into order (the epoch's sample order) in train_epoch" in text


def test_refusing_float64_is_learnt_per_case_and_float32_is_checked(tmp_path):
    ref = _variant(
        tmp_path,
        "float32_only",
        "        if spec.output != OUTPUT[spec.loss]:",
        '        if spec.dtype != "float32":\n'
        '            raise NotImplementedError("float32 only")\n'
        "        if spec.output != OUTPUT[spec.loss]:",
    )
    status, text, one_step = _report(ref, activation=["relu"], loss=["cce"])
    assert status == 0, text
    assert "relu→softmax/cce, sgd, float32, lr 0.1" in one_step
    assert "4 of 4 cases checked pass, 4 not supported: conforms" in text
    assert re.search(r"relu→softmax/cce, adam, float64 +not supported +NotImplementedError", text)


DUCK = textwrap.dedent(
    """
    import numpy as np

    class ConstantMLP:  # the smallest thing that satisfies the protocol: it never learns
        def __init__(self, spec, params):
            self.params = [(np.array(W), np.array(b)) for W, b in params]
            self.n_out = spec.n_outputs

        def train_epoch(self, X, Y, batch_size, order):
            return 1.0

        def predict_proba(self, X):
            return np.full((len(X), self.n_out), 1.0 / self.n_out)

        def get_params(self):
            return [(W.copy(), b.copy()) for W, b in self.params]
    """
)


def test_module_reference_and_entry_point(tmp_path, monkeypatch):
    (tmp_path / "duck_mlp.py").write_text(DUCK)
    dist = tmp_path / "duck_mlp-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: duck-mlp\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mlp_bench.backends]\nduck = duck_mlp:ConstantMLP\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.plugin_backends() == {"duck": "duck_mlp:ConstantMLP"}
    spec = MLPSpec((4, 3, 2))
    for name in ("duck_mlp:ConstantMLP", "duck"):
        assert registry.check_backend_name(name) == name
        model = make_model(name, spec, init_params(spec))
        assert model.train_epoch(np.zeros((5, 4)), np.zeros((5, 2)), 2, np.arange(5)) == 1.0
    with pytest.raises(ValueError, match="no module 'nope'"):
        registry.check_backend_name("nope:Thing")
    with pytest.raises(ValueError, match="module:Class"):
        registry.check_backend_name("not-a-backend")
    (tmp_path / "half.py").write_text("class Half:\n    def __init__(self, spec, params): ...\n")
    with pytest.raises(registry.BackendUnavailable, match="lacks train_epoch"):
        registry.backend_class("half:Half")


def test_run_and_verify_from_the_command_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "--backends",
            f"numpy-vec,{REFERENCE},sklearn",
            "--datasets",
            "digits",
            "--losses",
            "cce,mse",
            "--epochs",
            "2",
            "--batch-sizes",
            "32",
            "--out",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "cells: 4 ok, 2 skipped" in run.stderr, run.stderr
    import pandas as pd

    rows = pd.read_csv(os.path.join(run.stdout.strip().splitlines()[-1], "results.csv"))
    status = {(r.backend, r.loss): r.status for r in rows.itertuples()}
    # mse on the (default) softmax output: the example and scikit-learn refuse it at
    # construction, which is "not supported", not an error
    assert status == {
        ("numpy-vec", "cce"): "ok",
        ("numpy-vec", "mse"): "ok",
        (REFERENCE, "cce"): "ok",
        (REFERENCE, "mse"): "skipped",
        ("sklearn", "cce"): "ok",
        ("sklearn", "mse"): "skipped",
    }
    assert rows[rows.status == "skipped"]["error"].str.startswith("not supported: ").all()
    verify = subprocess.run(
        [sys.executable, "-m", "bench", "verify", "--backends", REFERENCE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert ": conforms" in verify.stdout


NAN_PREDICTIONS = textwrap.dedent(
    """
    from impls import make_model

    class NanAfterTraining:  # numpy-vec, except that one prediction is NaN once trained
        def __init__(self, spec, params):
            self.inner, self.trained = make_model("numpy-vec", spec, params), False

        def train_epoch(self, X, Y, batch_size, order):
            self.trained = True
            return self.inner.train_epoch(X, Y, batch_size, order)

        def predict_proba(self, X):
            P = self.inner.predict_proba(X)
            if self.trained:
                P[0, 0] = float("nan")
            return P

        def get_params(self):
            return self.inner.get_params()
    """
)


def test_a_nan_prediction_fails_the_case(tmp_path):
    """max() and `<=` let NaN pass unseen: a case whose predictions hold one must fail."""
    path = tmp_path / "nan_mlp.py"
    path.write_text(NAN_PREDICTIONS)
    X, Y, orders = conformance.digits_data("float64")
    case = conformance.Case("relu", "softmax", "cce", "sgd", "float64")
    status, text = conformance.run_case(f"{path}:NanAfterTraining", case, X, Y, orders)
    assert status == "FAIL" and "predict_proba returned NaN or inf" in text, text
