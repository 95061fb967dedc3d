"""The NumPy core: gradients against central differences, numerics, optimiser steps."""

import itertools

import numpy as np
import pytest

from impls import MLPSpec, core, init_params, make_model
from impls.spec import ACTIVATION_NAMES, LOSS_OUTPUTS

NUMPY_BACKENDS = ["numpy-vec", "numpy-loop"]
LOSS_OUTPUT_PAIRS = [(loss, out) for loss, outs in LOSS_OUTPUTS.items() for out in outs]


def _targets(loss, rng, n, k):
    if loss == "cce":
        return np.eye(k)[rng.integers(0, k, n)]
    if loss == "bce":
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.normal(size=(n, k))


def _numeric_gradient(params, X, Y, spec, h=1e-6):
    grads = []
    for layer in params:
        for a in layer:
            g = np.zeros_like(a)
            for idx in np.ndindex(a.shape):
                old = a[idx]
                a[idx] = old + h
                f_plus = core.objective(params, X, Y, spec)
                a[idx] = old - h
                f_minus = core.objective(params, X, Y, spec)
                a[idx] = old
                g[idx] = (f_plus - f_minus) / (2 * h)
            grads.append(g)
    return grads


@pytest.mark.parametrize("backend", NUMPY_BACKENDS)
@pytest.mark.parametrize("decay", [0.0, 0.1])
@pytest.mark.parametrize("loss,output", LOSS_OUTPUT_PAIRS)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_gradient_matches_central_differences(backend, activation, loss, output, decay):
    spec = MLPSpec(
        (4, 5, 3, 3),
        activation=activation,
        output=output,
        loss=loss,
        weight_decay=decay,
        dtype="float64",
    )
    rng = np.random.default_rng(7)
    X = rng.normal(size=(6, 4))
    Y = _targets(loss, rng, 6, 3)
    params = init_params(spec, seed=3, scheme="normal", scale=0.8, bias="like_weights")
    model = make_model(backend, spec, params)
    mean_loss, grads = model.loss_and_gradients(X, Y)
    numeric = _numeric_gradient(params, X, Y, spec)
    analytic = [g for pair in grads for g in pair]
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-8)
    # the reported loss is the data loss, without the penalty
    penalty = 0.5 * decay * sum((W**2).sum() for W, _ in params)
    assert mean_loss == pytest.approx(core.objective(params, X, Y, spec) - penalty, rel=1e-12)


def test_hand_worked_sgd_step():
    """A 2-2-2 relu network with a linear output and mse, one SGD step by hand.

    x = (1, 2), y = (1, 0)
    W1 = [[1, -1], [0.5, 1]], b1 = (0, -2)  ->  z1 = x W1 + b1 = (2, -1), a1 = relu = (2, 0)
    W2 = [[0.5, -1], [1, 1]], b2 = (0.5, 0) ->  yhat = a1 W2 + b2 = (1.5, -2)
    loss = mean((0.5)^2, (-2)^2) = 2.125
    dL/dyhat = 2 (yhat - y) / 2 = (0.5, -2) = delta2
    dW2 = outer(a1, delta2) = [[1, -4], [0, 0]],   db2 = (0.5, -2)
    delta1 = (delta2 W2^T) * relu'(z1) = (2.25, -1.5) * (1, 0) = (2.25, 0)
    dW1 = outer(x, delta1) = [[2.25, 0], [4.5, 0]], db1 = (2.25, 0)
    with lr = 0.1:
    W1 = [[0.775, -1], [0.05, 1]], b1 = (-0.225, -2), W2 = [[0.4, -0.6], [1, 1]], b2 = (0.45, 0.2)
    """
    spec = MLPSpec((2, 2, 2), output="linear", loss="mse", lr=0.1, dtype="float64")
    params = [
        (np.array([[1.0, -1.0], [0.5, 1.0]]), np.array([0.0, -2.0])),
        (np.array([[0.5, -1.0], [1.0, 1.0]]), np.array([0.5, 0.0])),
    ]
    expected = [
        (np.array([[0.775, -1.0], [0.05, 1.0]]), np.array([-0.225, -2.0])),
        (np.array([[0.4, -0.6], [1.0, 1.0]]), np.array([0.45, 0.2])),
    ]
    X, Y = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0]])
    for backend in NUMPY_BACKENDS:
        model = make_model(backend, spec, params)
        assert model.train_epoch(X, Y, batch_size=1) == pytest.approx(2.125, abs=1e-15)
        for (W, b), (W_exp, b_exp) in zip(model.get_params(), expected):
            np.testing.assert_allclose(W, W_exp, atol=1e-15)
            np.testing.assert_allclose(b, b_exp, atol=1e-15)


def test_losses_are_stable_for_large_logits():
    z = np.array([[1000.0, -1000.0, 0.0]])
    y = np.array([[0.0, 1.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = core.softmax(z)
        assert core.cce_loss(z, p, y)[0] == pytest.approx(2000.0)
        s = core.sigmoid(z)
        np.testing.assert_array_equal(s, [[1.0, 0.0, 0.5]])
        # bce per output: softplus(z) - y z = 1000, 0 (y=1, z=-1000 gives 1000), log 2
        expected = (1000.0 + 1000.0 + np.log(2.0)) / 3
        assert core.bce_loss(z, s, y)[0] == pytest.approx(expected)
    for dtype in (np.float32, np.float64):
        zz = np.array([[-200.0, 200.0]], dtype=dtype)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            assert core.sigmoid(zz).dtype == dtype
            assert np.isfinite(core.softmax(zz)).all()


def test_cce_matches_definition_for_soft_targets():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    y = rng.dirichlet(np.ones(4), size=5)
    p = core.softmax(z)
    np.testing.assert_allclose(core.cce_loss(z, p, y), -(y * np.log(p)).sum(axis=1))


def test_sgd_momentum_follows_torch_formula():
    p = [np.array([1.0])]
    opt = core.SGD(p, lr=0.5, momentum=0.9)
    # v1 = g1 = 2 -> p = 1 - 0.5*2 = 0; v2 = 0.9*2 + 1 = 2.8 -> p = -1.4
    opt.step(p, [np.array([2.0])])
    assert p[0][0] == pytest.approx(0.0)
    opt.step(p, [np.array([1.0])])
    assert p[0][0] == pytest.approx(-1.4)


def test_adam_steps_and_epsilon_placement():
    g = 1e-5
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-7
    results = {}
    for placement in ("v_hat", "v"):
        p = [np.array([0.0])]
        core.Adam(p, lr, (b1, b2), eps, epsilon_on=placement).step(p, [np.array([g])])
        results[placement] = p[0][0]
    # first step: m_hat = g, v_hat = g^2
    assert results["v_hat"] == pytest.approx(-lr * g / (g + eps), rel=1e-12)
    # Keras's placement: eps on sqrt(v) = sqrt(1 - b2) g, i.e. eps / sqrt(1 - b2) on sqrt(v_hat)
    assert results["v"] == pytest.approx(-lr * g / (g + eps / np.sqrt(1 - b2)), rel=1e-12)
    with pytest.raises(ValueError, match="epsilon_on"):
        core.Adam([np.zeros(1)], lr, epsilon_on="elsewhere")


@pytest.mark.parametrize("backend", NUMPY_BACKENDS)
@pytest.mark.parametrize(
    "activation,loss", list(itertools.product(ACTIVATION_NAMES, ["cce", "bce"]))
)
def test_float32_work_stays_float32(backend, activation, loss):
    spec = MLPSpec(
        (3, 4, 2),
        activation=activation,
        loss=loss,
        optimizer="adam",
        lr=0.01,
        weight_decay=0.01,
        dtype="float32",
    )
    model = make_model(backend, spec, init_params(spec))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3)).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 10)]
    model.train_epoch(X, Y, batch_size=4)
    assert all(W.dtype == np.float32 and b.dtype == np.float32 for W, b in model.get_params())
    assert model.predict_proba(X).dtype == np.float32
    _, grads = model.loss_and_gradients(X, Y)
    assert all(g.dtype == np.float32 for pair in grads for g in pair)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cce_matches_definition_per_sample_and_per_batch(dtype):
    """The fused loss and delta equal -sum(y log softmax(z)) and softmax(z) sum(y) - y, for a
    batch and for each of its rows alone, with or without y_sum given, in z's dtype."""
    rng = np.random.default_rng(1)
    z = (rng.normal(size=(5, 4)) * 3).astype(dtype)
    y = (rng.dirichlet(np.ones(4), size=5) * rng.uniform(0.5, 2, (5, 1))).astype(dtype)
    p = core.softmax(z.astype(np.float64))
    expected_loss = -(y * np.log(p)).sum(axis=1)
    expected_delta = p * y.sum(axis=1, keepdims=True) - y
    tol = 1e-5 if dtype == np.float32 else 1e-12
    delta = np.empty_like(z)
    for y_sum in (None, y.sum(axis=1)):
        loss = core.softmax_cce(z, y, delta, y_sum=y_sum)
        assert loss.dtype == dtype and delta.dtype == dtype
        np.testing.assert_allclose(loss, expected_loss, rtol=tol, atol=tol)
        np.testing.assert_allclose(delta, expected_delta, rtol=tol, atol=tol)
    row = np.empty(4, dtype)
    for j in range(5):
        loss = core.softmax_cce(z[j], y[j], row, y_sum=float(y[j].sum()))
        assert np.asarray(loss).dtype == dtype
        assert float(loss) == pytest.approx(expected_loss[j], rel=tol, abs=tol)
        np.testing.assert_allclose(row, expected_delta[j], rtol=tol, atol=tol)


@pytest.mark.parametrize("loss,output", LOSS_OUTPUT_PAIRS)
def test_loss_and_delta_table_matches_the_separate_functions(loss, output):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(6, 3))
    y = _targets(loss, rng, 6, 3)
    yhat = core.OUTPUTS[output](z, out=np.empty_like(z))
    delta, scratch = np.empty_like(z), np.empty_like(z)
    losses = core.LOSS_AND_DELTA[(loss, output)](z, y, delta, scratch)
    np.testing.assert_allclose(losses, core.LOSSES[loss](z, yhat, y), rtol=1e-12)
    if (loss, output) in core.DELTAS:
        np.testing.assert_allclose(delta, core.DELTAS[(loss, output)](z, yhat, y), rtol=1e-12)
    for j in range(6):  # one sample at a time, as numpy-loop calls it
        row = np.empty(3)
        one = core.LOSS_AND_DELTA[(loss, output)](z[j], y[j], row, np.empty(3))
        assert float(one) == pytest.approx(losses[j], rel=1e-12)
        np.testing.assert_allclose(row, delta[j], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", NUMPY_BACKENDS)
@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_plain_sgd_direct_update_equals_gradient_then_step(backend, batch_size, activation):
    """Plain SGD without decay adds each rank-1 term straight into the weights (direct_scale);
    that must be the same update as forming the batch gradient and then taking the step."""
    spec = MLPSpec((5, 4, 3, 3), activation=activation, lr=0.3, dtype="float64")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(10, 5))
    Y = rng.dirichlet(np.ones(3), size=10)
    params = init_params(spec, seed=5)
    model = make_model(backend, spec, params)
    assert model._optimizer.direct_scale == -spec.lr
    reference = make_model(backend, spec, params)
    losses = []
    for start in range(0, 10, batch_size):
        loss, grads = reference.loss_and_gradients(X[start : start + batch_size],
                                                   Y[start : start + batch_size])
        stepped = [(W - spec.lr * gW, b - spec.lr * gb)
                   for (W, b), (gW, gb) in zip(reference.get_params(), grads)]
        reference.set_params(stepped)
        losses.append(loss * len(X[start : start + batch_size]))
    assert model.train_epoch(X, Y, batch_size) == pytest.approx(sum(losses) / 10, rel=1e-12)
    for (W, b), (W_ref, b_ref) in zip(model.get_params(), reference.get_params()):
        np.testing.assert_allclose(W, W_ref, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b, b_ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", NUMPY_BACKENDS)
@pytest.mark.parametrize("batch_size", [1, 3])
def test_float32_plain_sgd_stays_float32(backend, batch_size):
    """The direct-update path (plain SGD, no decay) keeps float32 work in float32."""
    spec = MLPSpec((3, 4, 2), loss="cce", optimizer="sgd", lr=0.1, dtype="float32")
    model = make_model(backend, spec, init_params(spec))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 3)).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 7)]
    assert np.isfinite(model.train_epoch(X, Y, batch_size=batch_size))
    assert all(W.dtype == np.float32 and b.dtype == np.float32 for W, b in model.get_params())
    buffers = [v for v in vars(model).values() if isinstance(v, np.ndarray)]
    buffers += [a for v in vars(model).values() if isinstance(v, list) for a in v
                if isinstance(a, np.ndarray)]
    assert buffers and all(a.dtype == np.float32 for a in buffers)
