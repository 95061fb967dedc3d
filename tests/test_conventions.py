"""Declared conventions (impls/conventions.py): checked, applied to every plug-in class by the
registry, and exact where docs/plugins.md says they are: a class that sums its loss over the
batch, or halves the quadratic cost summed over the outputs, computes the contract's update
on every optimiser path once it declares so."""

import io
import os

import numpy as np
import pytest

from bench.check import conformance
from impls import MLPSpec, conventions, init_params, make_model, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "student_mlp.py")


def _student(tmp_path, name, declared, *changes):
    source = open(EXAMPLE).read()
    for old, new in changes:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    source = source.replace(
        "class StudentMLP:\n", f"class StudentMLP:\n    conventions = {declared}\n"
    )
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return f"{path}:StudentMLP"


SUMMED = (
    (
        "loss, delta = -np.sum(y * np.log(p)) / n, (p - y) / n",
        "loss, delta = -np.sum(y * np.log(p)), p - y",
    ),
    ("total += loss * n", "total += loss"),
    ("return total / len(order)", "return total"),
)
HALF_SUM = (
    (
        "loss, delta = np.mean((p - y) ** 2), 2 * (p - y) / y.size",
        "loss, delta = 0.5 * np.sum((p - y) ** 2) / n, (p - y) / n",
    ),
)


def _report(name, **options):
    out = io.StringIO()
    status = conformance.run_conformance(name, options, out=out)
    return status, out.getvalue()


def test_declarations_are_checked_naming_what_is_allowed():
    class Plain:
        pass

    assert conventions.declared(Plain) == {"loss_over_batch": "mean", "mse": "mean"}
    for given, text in [
        ({"mse": "sum"}, "convention 'mse' cannot be 'sum'; allowed: 'mean' or 'half-sum'"),
        ({"batch": "sum"}, "unknown convention 'batch'; allowed: loss_over_batch"),
        (["mse"], "conventions must be a dict"),
    ]:
        Plain.conventions = given
        with pytest.raises(ValueError, match=text.replace("(", r"\(").replace(")", r"\)")):
            conventions.declared(Plain)


def test_a_bad_declaration_stops_the_class_from_loading(tmp_path):
    path = tmp_path / "bad_conventions.py"
    path.write_text(
        "class Bad:\n    conventions = {'mse': 'halfsum'}\n"
        "    def train_epoch(self): ...\n    def predict_proba(self): ...\n"
        "    def get_params(self): ...\n"
    )
    with pytest.raises(ValueError, match="Bad: convention 'mse' cannot be 'halfsum'"):
        registry.backend_class(f"{path}:Bad")


def test_the_spec_conversions():
    half = {"loss_over_batch": "mean", "mse": "half-sum"}
    summed = {"loss_over_batch": "sum", "mse": "mean"}
    sgd = MLPSpec((4, 3, 10), loss="mse", lr=0.5, momentum=0.9, weight_decay=0.01)
    converted = conventions.convert_spec(half, sgd)
    assert converted.lr == pytest.approx(0.5 * 2 / 10)
    assert converted.weight_decay == pytest.approx(0.01 * 5) and converted.momentum == 0.9
    adam = MLPSpec((4, 3, 10), loss="cce", optimizer="adam", lr=0.01, eps=1e-8, weight_decay=0.01)
    assert conventions.convert_spec(half, adam) == adam  # cce: half-sum is about mse only
    converted = conventions.convert_spec(summed, adam, batch_size=32)
    assert converted.lr == 0.01 and converted.eps == pytest.approx(32e-8)
    assert converted.weight_decay == pytest.approx(0.32)
    assert conventions.convert_loss(half, sgd, 5.0, 7) == pytest.approx(1.0)
    assert conventions.convert_loss(summed, sgd, 70.0, 7) == pytest.approx(10.0)
    assert conventions.convert_loss(summed, sgd, None, 7) is None


def test_a_class_summing_over_the_batch_is_exact_on_full_batches(tmp_path):
    name = _student(tmp_path, "student_summed", {"loss_over_batch": "sum"}, *SUMMED)
    status, text = _report(name, activation=["relu"], loss=["cce"])
    assert status == 0, text
    assert f"batch {conformance.SUM_BATCH} (the last one {conformance.SUM_BATCH})" in text
    assert "8 of 8 cases checked pass: conforms" in text  # sgd, momentum, decay, adam x 2 dtypes
    # a short last batch (60 = 7 x 8 + 4) takes 4/8 of the contract's step: as documented
    X, Y, orders = conformance.digits_data("float64")
    case = conformance.Case("relu", "softmax", "cce", "sgd", "float64")
    status, where = conformance.run_case(name, case, X, Y, orders, batch=8)
    assert status == "FAIL" and "leaves the tolerance at epoch 1, step 8" in where


def test_a_half_sum_quadratic_cost_is_exact_on_every_optimiser_path(tmp_path):
    name = _student(tmp_path, "student_half", {"mse": "half-sum"}, *HALF_SUM)
    status, text = _report(name, activation=["tanh"], output=["linear"], loss=["mse"])
    assert status == 0, text
    assert "8 of 8 cases checked pass: conforms" in text
    undeclared = _student(tmp_path, "student_half_undeclared", {}, *HALF_SUM)
    status, text = _report(undeclared, activation=["tanh"], output=["linear"], optimizer=["sgd"])
    assert status == 1 and "n_out/2 = 5× the contract's" in text


def test_a_summing_class_trains_with_one_batch_size(tmp_path):
    name = _student(tmp_path, "student_summed_once", {"loss_over_batch": "sum"}, *SUMMED)
    spec = MLPSpec((64, 16, 10), dtype="float64")
    model = make_model(name, spec, init_params(spec, seed=1))
    assert isinstance(model, conventions.Converted) and type(model).plugin.__name__ == "StudentMLP"
    X, Y, _ = conformance.digits_data("float64")
    model.train_epoch(X, Y, 6, np.arange(60))
    with pytest.raises(ValueError, match="train it with that batch size only"):
        model.train_epoch(X, Y, 8, np.arange(60))


STAGED = '''

class StagedStudent(StudentMLP):
    """Trains only on data it staged itself (the data names its model)."""

    def stage(self, X, Y):
        return ("staged", np.array(X), np.array(Y), id(self))

    def train_epoch(self, data, batch_size, order):
        tag, X, Y, owner = data
        assert owner == id(self), "data staged by another model"
        return super().train_epoch(X, Y, batch_size, order)
'''


def test_a_staging_class_that_sums_over_the_batch_is_staged_again_when_rebuilt(tmp_path):
    name = _student(tmp_path, "student_summed_staged", {"loss_over_batch": "sum"}, *SUMMED)
    path = name.rpartition(":")[0]
    with open(path, "a") as f:
        f.write(STAGED)
    status, text = _report(f"{path}:StagedStudent", activation=["relu"], loss=["cce"])
    assert status == 0, text
    assert "8 of 8 cases checked pass: conforms" in text


STAGED_NO_ORDER = """

class StagedStudent(StudentMLP):
    def stage(self, X, Y):
        return np.array(X), np.array(Y)

    def train_epoch(self, data, batch_size, order=None):
        X, Y = data
        order = np.arange(len(X)) if order is None else order
        return super().train_epoch(X, Y, batch_size, order)
"""


def test_the_loss_of_a_staged_epoch_without_an_order_is_converted(tmp_path):
    """train_epoch(data, batch_size) on staged data, no order (every sample, in order): the
    loss summed over the epoch is divided by the number of samples staged."""
    name = _student(tmp_path, "student_summed_all", {"loss_over_batch": "sum"}, *SUMMED)
    path = name.rpartition(":")[0]
    with open(path, "a") as f:
        f.write(STAGED_NO_ORDER)
    spec = MLPSpec((64, 16, 10), dtype="float64")
    X, Y, _ = conformance.digits_data("float64")
    mine = make_model(f"{path}:StagedStudent", spec, init_params(spec, seed=1))
    ref = make_model("numpy-vec", spec, init_params(spec, seed=1))
    loss = mine.train_epoch(mine.stage(X, Y), 6)
    assert loss == pytest.approx(ref.train_epoch(X, Y, 6), rel=1e-12)
