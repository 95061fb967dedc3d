"""Does the harness handicap a peer? The jax and sklearn backends against the plain code their
users write for the same training, as test_framework_overhead.py does for keras and torch.

- jax: `plain-scan` is one jitted `lax.scan` of the train step over the epoch's batches, on
  arrays already on the device: the same computation as the backend, without the harness
  (its ratio is the one recorded, `ratio_to_plain`); `plain-loop` is the other way JAX users
  write it, a Python loop calling a jitted step per batch, for scale.
- sklearn: `plain` is one `partial_fit(X, y)` per epoch (shuffle=False, the same batches);
  `plain-fit` is one `fit` call of EPOCHS iterations (max_iter=EPOCHS, tol=0,
  n_iter_no_change large), the way most scikit-learn users train.

One round is EPOCHS epochs on each side from the same initial weights, in the fixed order
0..n-1 (as plain code without shuffling). The mlp-bench variant also times itself against
the first plain variant in alternating rounds (`interleaved_ratio`), whose median the
pytest-benchmark report shows: reported, never asserted (a bound on a time fails when the
machine is busy, not when the harness is at fault).

Run as tests (the default run), the jax mlp-bench variant checks that it ends one round with
the weights of both plain variants: the same training, so their times compare the same work.
scikit-learn's plain code draws its own initial weights, and its first `partial_fit` trains;
the sklearn backend's training is checked against numpy-vec in tests/test_peers.py instead.
"""

import warnings

import numpy as np
import pytest

from impls import init_params

from .conftest import assert_same_training, require, run_benchmark
from .test_framework_overhead import EPOCHS, LR, _mlp_bench, _spec, interleaved_ratio

CASES = [("digits-64-100-10", 32), ("mnist-784-256-128-10", 256)]


def _jax_parts(spec, params, X, Y):
    import jax
    import jax.numpy as jnp
    import optax

    p = [(jnp.asarray(W), jnp.asarray(b)) for W, b in params]
    tx = optax.sgd(LR)

    def loss_fn(p, x, y):
        for W, b in p[:-1]:
            x = jax.nn.relu(x @ W + b)
        W, b = p[-1]
        return optax.softmax_cross_entropy(x @ W + b, y).mean()

    def step(state, batch):
        p, s = state
        loss, g = jax.value_and_grad(loss_fn)(p, *batch)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), loss

    return jax, jnp, p, tx.init(p), step, jnp.asarray(X), jnp.asarray(Y)


def _plain_jax_scan(spec, params, X, Y, batch_size):
    jax, jnp, p, s, step, Xj, Yj = _jax_parts(spec, params, X, Y)
    n = (len(X) // batch_size) * batch_size  # full batches scanned, the rest one more step
    xs = Xj[:n].reshape(-1, batch_size, X.shape[1])
    ys = Yj[:n].reshape(-1, batch_size, Y.shape[1])
    epoch = jax.jit(lambda state, xs, ys: jax.lax.scan(step, state, (xs, ys)))
    one = jax.jit(step)
    state = [(p, s)]

    def run():
        st = state[0]
        for _ in range(EPOCHS):
            st, _ = epoch(st, xs, ys)
            if n < len(X):
                st, _ = one(st, (Xj[n:], Yj[n:]))
        state[0] = jax.block_until_ready(st)

    run.weights = lambda: _numpy_weights(state)
    return run


def _plain_jax_loop(spec, params, X, Y, batch_size):
    jax, jnp, p, s, step, Xj, Yj = _jax_parts(spec, params, X, Y)
    one = jax.jit(step)
    batches = [
        (Xj[i : i + batch_size], Yj[i : i + batch_size]) for i in range(0, len(X), batch_size)
    ]
    state = [(p, s)]

    def run():
        st = state[0]
        for _ in range(EPOCHS):
            for batch in batches:
                st, _ = one(st, batch)
        state[0] = jax.block_until_ready(st)

    run.weights = lambda: _numpy_weights(state)
    return run


def _numpy_weights(state):
    """[(W, b), ...] of a plain JAX loop's state [(params, optimiser state)]."""
    return [(np.asarray(W), np.asarray(b)) for W, b in state[0][0]]


def _sklearn_estimator(spec, batch_size, max_iter=1):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=spec.layer_sizes[1:-1],
        solver="sgd",
        learning_rate_init=LR,
        momentum=0.0,
        alpha=0.0,
        batch_size=batch_size,
        shuffle=False,
        tol=0.0,
        n_iter_no_change=2**31 - 1,
        max_iter=max_iter,
        random_state=0,
    )


def _plain_sklearn_partial_fit(spec, params, X, Y, batch_size):
    est = _sklearn_estimator(spec, batch_size)
    y = Y.argmax(axis=1)
    classes = np.arange(Y.shape[1])
    est.partial_fit(X, y, classes=classes)  # set up, as a user's first call does

    def run():
        for _ in range(EPOCHS):
            est.partial_fit(X, y)

    return run


def _plain_sklearn_fit(spec, params, X, Y, batch_size):
    from sklearn.exceptions import ConvergenceWarning

    est = _sklearn_estimator(spec, batch_size, max_iter=EPOCHS)
    y = Y.argmax(axis=1)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the plan
            est.fit(X, y)

    return run


PLAIN = {
    "jax": {"plain-scan": _plain_jax_scan, "plain-loop": _plain_jax_loop},
    "sklearn": {"plain": _plain_sklearn_partial_fit, "plain-fit": _plain_sklearn_fit},
}
VARIANTS = [(fw, v) for fw, plains in PLAIN.items() for v in ("mlp-bench", *plains)]


@pytest.mark.parametrize("framework, variant", VARIANTS)
@pytest.mark.parametrize("model_name, batch_size", CASES)
def test_peer_against_plain_code(
    benchmark, models, matmul_peak, threads, model_name, batch_size, framework, variant
):
    require(framework)
    sizes, X, Y = models(model_name)
    spec = _spec(sizes)
    params = init_params(spec, seed=0)
    plains = PLAIN[framework]
    if variant == "mlp-bench":
        fn = _mlp_bench(framework, spec, params, X, Y, batch_size, "fixed")
    else:
        fn = plains[variant](spec, params, X, Y, batch_size)
    benchmark.group = f"overhead | {framework} | {model_name} | batch {batch_size}"
    run_benchmark(
        benchmark,
        fn,
        EPOCHS * len(X),
        spec.flops_per_sample,
        matmul_peak,
        {
            "backend": framework,
            "variant": variant,
            "model": model_name,
            "batch_size": batch_size,
            "order": "fixed",
            "kind": "overhead",
            "epochs": EPOCHS,
            "n_samples": EPOCHS * len(X),
        },
        threads,
    )
    if variant == "mlp-bench" and benchmark.disabled and framework == "jax":
        for make_plain in plains.values():  # `fn` ran one round, untimed
            plain = make_plain(spec, params, X, Y, batch_size)
            plain()
            assert_same_training(fn.weights(), plain.weights(), init_params(spec, seed=0))
    if variant == "mlp-bench" and not benchmark.disabled:
        reference = next(iter(plains.values()))(spec, params, X, Y, batch_size)
        benchmark.extra_info.update(interleaved_ratio(fn, reference))
