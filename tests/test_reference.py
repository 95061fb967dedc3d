"""impls/reference.py, the textbook MLP: written apart from impls/core.py (it imports nothing of
it), its gradients are those of its objective (central differences), and it trains exactly as
numpy-vec and numpy-loop do, batched and one sample at a time, on every activation x
output/loss x optimiser path."""

import ast
import itertools
from pathlib import Path

import numpy as np
import pytest
from helpers import central_differences, targets

from impls import MLPSpec, init_params, make_model, reference
from impls.reference import ReferenceMLP
from impls.spec import ACTIVATION_NAMES, LOSS_OUTPUTS

SOURCE = Path(reference.__file__)
NETWORKS = [(loss, output) for loss, outputs in LOSS_OUTPUTS.items() for output in outputs]
OPTIMIZERS = {
    "sgd": {"optimizer": "sgd", "lr": 0.1},
    "momentum": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
    "decay": {"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.01},
    "adam": {"optimizer": "adam", "lr": 0.01},
    "adam+decay": {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.01},
}
LAYERS = (5, 7, 6, 3)  # two hidden layers: backpropagation through a hidden layer twice
N, BATCH, EPOCHS = 20, 6, 3  # 20 = 3 x 6 + 2: every epoch ends on a short batch


def _problem(loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, LAYERS[0]))
    Y = targets(loss, rng, N, LAYERS[-1])
    return X, Y, [rng.permutation(N) for _ in range(EPOCHS)]


def _train(model, X, Y, orders):
    losses = [model.train_epoch(X.copy(), Y.copy(), BATCH, order.copy()) for order in orders]
    return np.array(losses), model.get_params(), model.predict_proba(X.copy())


def _worst_difference(a, b):
    (losses_a, params_a, proba_a), (losses_b, params_b, proba_b) = a, b
    diffs = [np.abs(losses_a - losses_b).max(), np.abs(proba_a - proba_b).max()]
    for (W_a, b_a), (W_b, b_b) in zip(params_a, params_b):
        assert W_a.shape == W_b.shape and b_a.shape == b_b.shape
        diffs += [np.abs(W_a - W_b).max(), np.abs(b_a - b_b).max()]
    assert all(np.isfinite(d) for d in diffs)  # NaN would pass a `<=` comparison unseen
    return max(diffs)


def test_reference_imports_nothing_of_the_core():
    """Independent of impls/core.py: it imports NumPy alone, so nothing of the core (or of
    impls.base, which builds on the core) can reach it."""
    imported = set()
    for node in ast.walk(ast.parse(SOURCE.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            imported |= {f"{module}.{alias.name}" for alias in node.names} | {module}
    assert imported <= {"__future__", "__future__.annotations", "numpy"}, imported
    assert not any("core" in name or name.startswith(("impls", ".")) for name in imported)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("network", NETWORKS, ids="/".join)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_reference_trains_as_numpy_vec_and_numpy_loop(activation, network, optimizer):
    """Same params, same orders, float64: the same losses, parameters and predictions after a
    few epochs (to rounding) from numpy-vec, numpy-loop and both forms of the reference."""
    loss, output = network
    spec = MLPSpec(
        LAYERS,
        activation=activation,
        loss=loss,
        output=output,
        dtype="float64",
        **OPTIMIZERS[optimizer],
    )
    params = init_params(spec, seed=1)
    X, Y, orders = _problem(loss)
    textbook = _train(ReferenceMLP(spec, params), X, Y, orders)
    others = {
        "reference per sample": ReferenceMLP(spec, params, per_sample=True),
        "numpy-vec": make_model("numpy-vec", spec, params),
        "numpy-loop": make_model("numpy-loop", spec, params),
    }
    for name, model in others.items():
        assert _worst_difference(_train(model, X, Y, orders), textbook) <= 1e-12, name
    assert np.abs(textbook[1][0][0] - params[0][0]).max() > 1e-3  # it did train


@pytest.mark.parametrize("per_sample", [False, True], ids=["batched", "per-sample"])
def test_adam_epsilon_on_v_trains_as_numpy_vec(per_sample):
    spec = MLPSpec(LAYERS, optimizer="adam", lr=0.01, eps=1e-3, dtype="float64")
    params = init_params(spec, seed=1)
    X, Y, orders = _problem("cce")
    mine = ReferenceMLP(spec, params, per_sample=per_sample, adam_epsilon_on="v")
    vec = make_model("numpy-vec", spec, params, adam_epsilon_on="v")
    assert _worst_difference(_train(mine, X, Y, orders), _train(vec, X, Y, orders)) <= 1e-12
    default = _train(ReferenceMLP(spec, params, per_sample=per_sample), X, Y, orders)
    assert _worst_difference(_train(vec, X, Y, orders), default) > 1e-6  # the placement shows


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("network", NETWORKS, ids="/".join)
def test_gradients_match_central_differences(network, activation):
    """Both forms' gradients of the batch objective (mean loss + weight decay) are its
    central-difference gradient (float64), for every loss and output."""
    loss, output = network
    spec = MLPSpec(
        (4, 5, 3),
        activation=activation,
        loss=loss,
        output=output,
        weight_decay=0.1,
        dtype="float64",
    )
    rng = np.random.default_rng(7)
    params = init_params(spec, seed=3, scheme="normal", scale=0.5, bias="like_weights")
    X = rng.normal(size=(6, 4))
    Y = targets(loss, rng, 6, 3)
    numeric = central_differences(lambda p: reference.objective(p, X, Y, spec), params)
    for per_sample in (False, True):
        losses, grads = ReferenceMLP(spec, params, per_sample=per_sample).gradients(X, Y)
        assert losses.shape == (6,)
        for analytic, numeric_one in zip([g for pair in grads for g in pair], numeric):
            np.testing.assert_allclose(analytic, numeric_one, atol=1e-8, rtol=1e-6)


def test_losses_match_their_definitions():
    """cce, bce and mse as DESIGN.md states them, written the naive way on moderate logits."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(4, 3))
    y_class, y_bits, y_any = (
        np.eye(3)[[0, 2, 1, 2]],
        rng.integers(0, 2, (4, 3)),
        rng.normal(size=(4, 3)),
    )
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(reference.cce(z, y_class, "softmax"), -(y_class * np.log(p)).sum(1))
    expected_bce = -(y_bits * np.log(s) + (1 - y_bits) * np.log(1 - s)).mean(1)
    np.testing.assert_allclose(reference.bce(z, y_bits, "sigmoid"), expected_bce)
    for output, yhat in (("linear", z), ("sigmoid", s), ("softmax", p)):
        np.testing.assert_allclose(reference.mse(z, y_any, output), ((yhat - y_any) ** 2).mean(1))


def test_large_logits_give_finite_losses_and_gradients():
    z = np.array([[1000.0, -1000.0, 0.0]])
    y = np.array([[0.0, 1.0, 0.0]])
    for loss, output in NETWORKS:
        value = reference.LOSSES[loss](z, y, output)
        delta = reference.logit_gradient(loss, output, z, y)
        assert np.isfinite(value).all() and np.isfinite(delta).all(), (loss, output)
    assert reference.cce(z, y, "softmax")[0] == pytest.approx(2000.0)


def test_output_jacobian_is_the_derivative_of_the_output():
    rng = np.random.default_rng(2)
    z, h = rng.normal(size=4), 1e-6
    for output, g in reference.OUTPUTS.items():
        numeric = np.stack([(g(z + h * e) - g(z - h * e)) / (2 * h) for e in np.eye(4)], axis=1)
        np.testing.assert_allclose(reference.output_jacobian(output, z), numeric, atol=1e-9)


def test_float32_stays_float32_and_inputs_are_not_touched():
    spec = MLPSpec(LAYERS, optimizer="adam", lr=0.01, weight_decay=0.01, dtype="float32")
    params = init_params(spec, seed=1)
    kept = [(W.copy(), b.copy()) for W, b in params]
    X, Y, orders = _problem("cce")
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    for array in (X, Y, *orders, *itertools.chain(*params)):
        array.flags.writeable = False  # any write into a caller's array raises
    for per_sample in (False, True):
        model = ReferenceMLP(spec, params, per_sample=per_sample)
        for order in orders:
            assert np.isfinite(model.train_epoch(X, Y, BATCH, order))
        assert all(a.dtype == np.float32 for pair in model.get_params() for a in pair)
        assert model.predict_proba(X).dtype == np.float32
    for (W, b), (W0, b0) in zip(params, kept):
        assert np.array_equal(W, W0) and np.array_equal(b, b0)


def test_reference_is_not_a_registered_backend():
    from impls import BACKENDS

    assert "reference" not in BACKENDS
    assert not any(entry.cls.endswith("ReferenceMLP") for entry in BACKENDS.values())
