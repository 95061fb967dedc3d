"""The NumPy core: gradients against central differences, numerics, optimiser steps."""

import itertools

import numpy as np
import pytest
from helpers import central_differences, targets

from impls import MLPSpec, core, init_params, make_model
from impls.spec import ACTIVATION_NAMES, LOSS_OUTPUTS

NUMPY_BACKENDS = ["numpy-vec", "numpy-loop"]
LOSS_OUTPUT_PAIRS = [(loss, out) for loss, outs in LOSS_OUTPUTS.items() for out in outs]


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
    Y = targets(loss, rng, 6, 3)
    params = init_params(spec, seed=3, scheme="normal", scale=0.8, bias="like_weights")
    model = make_model(backend, spec, params)
    mean_loss, grads = model.loss_and_gradients(X, Y)
    numeric = central_differences(lambda p: core.objective(p, X, Y, spec), params)
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
        loss, delta = core.LOSSES[("cce", "softmax")](z, y)
        assert loss[0] == pytest.approx(2000.0)
        np.testing.assert_allclose(delta, [[1.0, -1.0, 0.0]], atol=1e-300)
        s = core.sigmoid(z)
        np.testing.assert_array_equal(s, [[1.0, 0.0, 0.5]])
        # bce per output: softplus(z) - y z = 1000, 0 (y=1, z=-1000 gives 1000), log 2
        expected = (1000.0 + 1000.0 + np.log(2.0)) / 3
        assert core.LOSSES[("bce", "sigmoid")](z, y)[0][0] == pytest.approx(expected)
    for dtype in (np.float32, np.float64):
        zz = np.array([[-200.0, 200.0]], dtype=dtype)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            assert core.sigmoid(zz).dtype == dtype
            assert np.isfinite(core.softmax(zz)).all()


def test_cce_matches_definition_for_soft_targets():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    y = rng.dirichlet(np.ones(4), size=5)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(core.softmax(z), p, rtol=1e-12)
    loss, delta = core.LOSSES[("cce", "softmax")](z, y)
    np.testing.assert_allclose(loss, -(y * np.log(p)).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(delta, p - y, rtol=1e-12, atol=1e-15)


def test_sgd_momentum_follows_torch_formula():
    p = [np.array([1.0])]
    state = core.sgd_init(p, lr=0.5, momentum=0.9)
    # v1 = g1 = 2 -> p = 1 - 0.5*2 = 0; v2 = 0.9*2 + 1 = 2.8 -> p = -1.4
    core.sgd_step(p, [np.array([2.0])], state)
    assert p[0][0] == pytest.approx(0.0)
    core.sgd_step(p, [np.array([1.0])], state)
    assert p[0][0] == pytest.approx(-1.4)
    plain = [np.array([1.0])]
    state = core.sgd_init(plain, lr=0.5)
    core.sgd_step(plain, [np.array([2.0])], state)
    core.sgd_step(plain, [np.array([1.0])], state)
    assert plain[0][0] == pytest.approx(1.0 - 0.5 * 2.0 - 0.5 * 1.0)


def test_adam_steps_and_epsilon_placement():
    g = 1e-5
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-7
    results = {}
    for placement in ("v_hat", "v"):
        p = [np.array([0.0])]
        state = core.adam_init(p, lr, (b1, b2), eps, epsilon_on=placement)
        core.adam_step(p, [np.array([g])], state)
        results[placement] = p[0][0]
    # first step: m_hat = g, v_hat = g^2
    assert results["v_hat"] == pytest.approx(-lr * g / (g + eps), rel=1e-12)
    # Keras's placement: eps on sqrt(v) = sqrt(1 - b2) g, i.e. eps / sqrt(1 - b2) on sqrt(v_hat)
    assert results["v"] == pytest.approx(-lr * g / (g + eps / np.sqrt(1 - b2)), rel=1e-12)
    with pytest.raises(ValueError, match="epsilon_on"):
        core.adam_init([np.zeros(1)], lr, epsilon_on="elsewhere")


def test_adam_second_step_by_hand():
    lr, (b1, b2), eps = 0.01, (0.9, 0.99), 1e-8
    p = [np.array([1.0, -2.0])]
    state = core.adam_init(p, lr, (b1, b2), eps)
    g1, g2 = np.array([0.5, -1.0]), np.array([0.25, 2.0])
    core.adam_step(p, [g1.copy()], state)
    core.adam_step(p, [g2.copy()], state)
    expected = np.array([1.0, -2.0])
    m = v = 0.0
    for t, g in ((1, g1), (2, g2)):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        expected = expected - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(p[0], expected, rtol=1e-14)
    assert state["t"] == 2


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
    batch and for each of its rows as a batch of one, in z's dtype."""
    rng = np.random.default_rng(1)
    z = (rng.normal(size=(5, 4)) * 3).astype(dtype)
    y = (rng.dirichlet(np.ones(4), size=5) * rng.uniform(0.5, 2, (5, 1))).astype(dtype)
    z64 = z.astype(np.float64)
    p = np.exp(z64) / np.exp(z64).sum(axis=1, keepdims=True)
    expected_loss = -(y * np.log(p)).sum(axis=1)
    expected_delta = p * y.sum(axis=1, keepdims=True) - y
    tol = 1e-5 if dtype == np.float32 else 1e-12
    loss, delta = core.softmax_cce(z, y)
    assert loss.dtype == dtype and delta.dtype == dtype
    np.testing.assert_allclose(loss, expected_loss, rtol=tol, atol=tol)
    np.testing.assert_allclose(delta, expected_delta, rtol=tol, atol=tol)
    for j in range(5):
        loss, delta = core.softmax_cce(z[j : j + 1], y[j : j + 1])
        assert loss.dtype == dtype and loss.shape == (1,)
        np.testing.assert_allclose(loss, expected_loss[j : j + 1], rtol=tol, atol=tol)
        np.testing.assert_allclose(delta, expected_delta[j : j + 1], rtol=tol, atol=tol)


@pytest.mark.parametrize("loss,output", LOSS_OUTPUT_PAIRS)
def test_each_loss_delta_is_its_derivative(loss, output):
    """delta = dloss/dz for each sample, checked by central differences on the logits."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=(6, 3))
    y = targets(loss, rng, 6, 3)
    loss_and_delta = core.LOSSES[(loss, output)]
    losses, delta = loss_and_delta(z, y)
    assert losses.shape == (6,) and delta.shape == (6, 3)
    h = 1e-6
    numeric = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        numeric[idx] = (loss_and_delta(zp, y)[0][idx[0]] - loss_and_delta(zm, y)[0][idx[0]]) / (
            2 * h
        )
    np.testing.assert_allclose(delta, numeric, rtol=1e-6, atol=1e-9)
    # the loss is the mean over outputs (bce, mse) or the sum (cce) named in the docstring
    yhat = core.OUTPUTS[output](z)
    if loss == "mse":
        np.testing.assert_allclose(losses, ((yhat - y) ** 2).mean(axis=1), rtol=1e-12)
    elif loss == "bce":
        expected = -(y * np.log(yhat) + (1 - y) * np.log(1 - yhat)).mean(axis=1)
        np.testing.assert_allclose(losses, expected, rtol=1e-10)


@pytest.mark.parametrize("decay", [0.0, 0.1])
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_numpy_loop_averages_the_per_sample_gradients(activation, decay):
    """numpy-loop's batch gradient is the mean of the gradients of each sample alone (plus the
    decay term once), and equals numpy-vec's whole-batch gradient."""
    spec = MLPSpec((5, 4, 3, 3), activation=activation, weight_decay=decay, dtype="float64")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(7, 5))
    Y = rng.dirichlet(np.ones(3), size=7)
    params = init_params(spec, seed=5, bias="like_weights")
    loop = make_model("numpy-loop", spec, params)
    loss, grads = loop.loss_and_gradients(X, Y)
    singles = [loop.loss_and_gradients(X[j : j + 1], Y[j : j + 1]) for j in range(7)]
    assert loss == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-12)
    for i, (dW, db) in enumerate(grads):
        # each single-sample gradient holds the decay term once, as does the batch mean
        np.testing.assert_allclose(dW, np.mean([s[1][i][0] for s in singles], axis=0), atol=1e-13)
        np.testing.assert_allclose(db, np.mean([s[1][i][1] for s in singles], axis=0), atol=1e-13)
    vec_loss, vec_grads = make_model("numpy-vec", spec, params).loss_and_gradients(X, Y)
    assert loss == pytest.approx(vec_loss, rel=1e-12)
    for (dW, db), (dW_v, db_v) in zip(grads, vec_grads):
        np.testing.assert_allclose(dW, dW_v, atol=1e-13)
        np.testing.assert_allclose(db, db_v, atol=1e-13)


def _sgd_by_hand(spec, params, grads, velocity):
    """One step of SGD (momentum mu: v = mu v + g; p -= lr v) in plain NumPy, new arrays."""
    out, new_velocity = [], []
    for (W, b), (dW, db), (vW, vb) in zip(params, grads, velocity):
        vW, vb = spec.momentum * vW + dW, spec.momentum * vb + db
        out.append((W - spec.lr * vW, b - spec.lr * vb))
        new_velocity.append((vW, vb))
    return out, new_velocity


@pytest.mark.parametrize("backend", NUMPY_BACKENDS)
@pytest.mark.parametrize("batch_size", [1, 3, 10])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_epoch_is_gradient_then_step_per_batch(backend, batch_size, momentum):
    """train_epoch makes, per batch, the update that loss_and_gradients and the optimiser's
    formula give, and reports the sample-weighted mean of the batch losses."""
    spec = MLPSpec((5, 4, 3), lr=0.3, momentum=momentum, weight_decay=0.05, dtype="float64")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(10, 5))
    Y = np.eye(3)[rng.integers(0, 3, 10)]
    order = rng.permutation(10)
    params = init_params(spec, seed=5)
    model = make_model(backend, spec, params)
    probe = make_model(backend, spec, params)  # gradients only, at the by-hand parameters
    expected, velocity = params, [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]
    total = 0.0
    for start in range(0, 10, batch_size):
        rows = order[start : start + batch_size]
        probe.set_params(expected)
        loss, grads = probe.loss_and_gradients(X[rows], Y[rows])
        total += loss * len(rows)
        expected, velocity = _sgd_by_hand(spec, expected, grads, velocity)
    assert model.train_epoch(X, Y, batch_size, order) == pytest.approx(total / 10, rel=1e-12)
    for (W, b), (W_exp, b_exp) in zip(model.get_params(), expected):
        np.testing.assert_allclose(W, W_exp, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b, b_exp, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", NUMPY_BACKENDS)
@pytest.mark.parametrize("optimizer,momentum", [("sgd", 0.0), ("sgd", 0.9), ("adam", 0.0)])
def test_float32_work_and_optimiser_state_stay_float32(backend, optimizer, momentum):
    spec = MLPSpec((3, 4, 2), optimizer=optimizer, momentum=momentum, lr=0.01, dtype="float32")
    model = make_model(backend, spec, init_params(spec))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 3)).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 7)]
    for batch_size in (1, 3):
        assert np.isfinite(model.train_epoch(X, Y, batch_size=batch_size))
    assert all(W.dtype == np.float32 and b.dtype == np.float32 for W, b in model.get_params())
    slots = [a for v in model._state.values() if isinstance(v, list) for a in v]
    assert len(slots) == {"sgd": 4 if momentum else 0, "adam": 8}[optimizer]
    assert all(a.dtype == np.float32 for a in slots)


def test_core_quotes_no_timings():
    """The speed choices in impls/core.py say what they buy and how to measure it, not a
    figure that goes stale with the machine and the library versions."""
    import re
    from pathlib import Path

    text = Path(core.__file__).read_text()
    timing = r"\d+(?:\.\d+)?\s*(?:µs|us|ns|ms)\b|\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?x\b"
    assert re.findall(timing, text) == []
    assert text.count("python -m timeit") >= 5  # a command beside each choice


def test_flops_per_sample_counts_the_products_a_step_computes():
    """Per layer 2W forward and 2W weight gradient, and 2W input gradient for every layer but
    the first: 6ΣW − 2W₁ (72% of 6ΣW for 784-256-128-10)."""
    spec = MLPSpec((784, 256, 128, 10))
    w1, w2, w3 = 784 * 256, 256 * 128, 128 * 10
    assert spec.flops_per_sample == 4 * (w1 + w2 + w3) + 2 * (w2 + w3)
    assert spec.flops_per_sample == 6 * spec.n_weights - 2 * w1
    assert spec.flops_per_sample / (6 * spec.n_weights) == pytest.approx(0.72, abs=0.005)
    assert MLPSpec((5, 3)).flops_per_sample == 4 * 15  # one layer: no input gradient at all
    for batch in (1, 32):
        flops = 0
        for _, a_shape, a_t, b_shape, b_t in spec.step_products(batch):
            (m, k), (k2, n) = a_shape[:: -1 if a_t else 1], b_shape[:: -1 if b_t else 1]
            assert k == k2  # the product is defined
            flops += 2 * m * k * n
        assert flops == batch * spec.flops_per_sample


@pytest.mark.parametrize("batch_size", [1, 4])
def test_numpy_loop_is_its_own_per_sample_loop_on_vectors(monkeypatch, batch_size):
    """numpy-loop backpropagates each sample as vectors itself: it trains with the batched
    core's forward, backward and gradients unavailable, and every product it makes has a
    vector operand (a vector-matrix product or an outer product of two vectors)."""
    spec = MLPSpec((6, 5, 4, 3), dtype="float64")
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 6)), np.eye(3)[rng.integers(0, 3, 8)]
    expected = make_model("numpy-vec", spec, init_params(spec, seed=1))
    expected.train_epoch(X, Y, batch_size)
    for name in ("forward", "backward", "gradients"):
        monkeypatch.setattr(core, name, lambda *a, **k: pytest.fail("the batched core"))
    shapes = []
    matmul = core.NUMPY.matmul
    monkeypatch.setattr(core.NUMPY, "matmul", lambda a, b: shapes.append((a, b)) or matmul(a, b))
    loop = make_model("numpy-loop", spec, init_params(spec, seed=1))
    loop.train_epoch(X, Y, batch_size)
    assert shapes and all(min(a.ndim, b.ndim) == 1 or 1 in a.shape[1:] for a, b in shapes)
    for (W, b), (W_v, b_v) in zip(loop.get_params(), expected.get_params()):
        np.testing.assert_allclose(W, W_v, atol=1e-12)
        np.testing.assert_allclose(b, b_v, atol=1e-12)
