"""The peers `sklearn` and `jax`: parity with numpy-vec, and what scikit-learn cannot express.

Parity is the suite's usual test: same parameters, same sample orders (batch 7 over 30 samples,
so every epoch ends on a short batch), 3 epochs; worst difference over parameters and
predictions within 1e-4 in float32 and 1e-9 in float64, and the epoch losses alike.
scikit-learn's Adam places ε like Keras (on sqrt(v)), so it is compared with numpy-vec using
that placement (the registry's `adam_epsilon_on`).
"""

import numpy as np
import pytest
from conftest import require_backend
from peer_parity import TOL, case_id, compare, make_case

from impls import MLPSpec, init_params, make_model

SKLEARN_CASES = [
    make_case(loss, opt, decay, dtype)
    for loss in ("cce", "bce", "mse")
    for opt in ("sgd", "sgd+momentum", "adam")
    for decay, dtype in ((False, "float64"), (True, "float64"), (True, "float32"))
] + [
    make_case("cce", "adam", True, "float64", batch=1),
    make_case("bce", "sgd", True, "float32", batch=64),  # one batch, larger than the data
]

# each case compiles its own step (1-3 s on a busy 2-core machine): every loss, optimiser,
# weight decay and dtype appears, not every combination (bench verify adds four more)
JAX_CASES = [
    make_case("cce", "sgd+momentum", True, "float64"),
    make_case("bce", "adam", True, "float32"),
    make_case("mse", "sgd", False, "float64", output="softmax"),
    make_case("mse", "adam", True, "float32"),
]


def _check(backend, case):
    worst, loss_diff = compare(backend, case)
    assert worst <= TOL[case["dtype"]], f"{backend} {case_id(case)}: {worst:.2e}"
    assert loss_diff <= (1e-5 if case["dtype"] == "float32" else 1e-9)


@pytest.mark.parametrize("case", SKLEARN_CASES, ids=[case_id(c) for c in SKLEARN_CASES])
def test_sklearn_matches_numpy_vec(case):
    require_backend("sklearn")
    _check("sklearn", case)


@pytest.mark.parametrize("case", JAX_CASES, ids=[case_id(c) for c in JAX_CASES])
def test_jax_matches_numpy_vec(case):
    require_backend("jax")
    _check("jax", case)


def test_sklearn_one_output_bce_and_regression():
    """bce on one output (a single logistic unit) and mse on one linear output, in float64."""
    require_backend("sklearn")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(25, 4))
    for loss, output, Y in (
        ("bce", "sigmoid", rng.integers(0, 2, size=(25, 1)).astype(float)),
        ("mse", "linear", rng.normal(size=(25, 1))),
    ):
        spec = MLPSpec(
            (4, 6, 1),
            loss=loss,
            output=output,
            optimizer="adam",
            lr=0.01,
            weight_decay=0.01,
            dtype="float64",
        )
        params = init_params(spec, seed=1)
        models = [
            make_model(b, spec, params, **o)
            for b, o in (("numpy-vec", {"adam_epsilon_on": "v"}), ("sklearn", {}))
        ]
        losses = [[m.train_epoch(X, Y, 4, np.arange(25)[::-1]) for _ in range(3)] for m in models]
        np.testing.assert_allclose(losses[1], losses[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            models[1].predict_proba(X), models[0].predict_proba(X), rtol=0, atol=1e-12
        )
        assert models[1].predict_proba(X).shape == (25, 1)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"layer_sizes": (4, 5, 2), "loss": "cce"}, "two classes with one logistic unit"),
        ({"layer_sizes": (4, 5, 3), "loss": "mse", "output": "softmax"}, "MLPRegressor"),
        ({"layer_sizes": (4, 5, 3), "loss": "mse", "output": "sigmoid"}, "log loss only"),
    ],
)
def test_sklearn_refuses_what_it_cannot_express(kwargs, needle):
    require_backend("sklearn")
    spec = MLPSpec(**kwargs)
    with pytest.raises(NotImplementedError, match=needle):
        make_model("sklearn", spec, init_params(spec))


def test_sklearn_needs_one_hot_targets_for_cce():
    require_backend("sklearn")
    spec = MLPSpec((4, 5, 3))
    model = make_model("sklearn", spec, init_params(spec))
    X = np.zeros((4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="one-hot"):
        model.train_epoch(X, np.full((4, 3), 1 / 3, dtype=np.float32), 2)


def test_peers_preset_and_the_default_backends():
    """`--preset peers` has every backend on two models; a plain `bench run` keeps the four."""
    from bench.sweep.build import build_sweep
    from bench.sweep.presets import DEFAULT, preset_mapping
    from impls.registry import BACKENDS, DEFAULT_BACKENDS

    sweep = build_sweep(preset_mapping("peers"))
    on_cpu = {name for name, backend in BACKENDS.items() if "cpu" in backend.devices}
    assert on_cpu == set(BACKENDS) - {"cupy"}
    assert [set(part.backends) for part in sweep.parts] == [on_cpu] * 2
    assert {part.datasets[0].split(":")[0] for part in sweep.parts} == {"digits", "synthetic"}
    assert all(set(part.backends) <= set(DEFAULT_BACKENDS) for part in build_sweep(DEFAULT).parts)
    assert set(DEFAULT_BACKENDS) == {"numpy-loop", "numpy-vec", "keras", "torch"}


def test_jax_compiles_its_epoch_once():
    """Before: the optimiser state came from optax on no device in particular and went back
    committed to the device, so the second epoch compiled the epoch again (0.9 s of a 2 ms
    epoch: the steady state's spread read 3600% on digits)."""
    require_backend("jax")
    spec = MLPSpec((6, 9, 4), optimizer="adam", lr=0.01)
    model = make_model("jax", spec, init_params(spec))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(23, 6)).astype(np.float32)
    data = model.stage(X, np.eye(4, dtype=np.float32)[rng.integers(0, 4, 23)])
    model.train_epoch(data, 4, rng.permutation(23))  # compiles (the jitted epoch is shared
    compiled = model._epoch._cache_size()  # by models of the same spec: count what it adds)
    for _ in range(2):
        model.train_epoch(data, 4, rng.permutation(23))
    assert model._epoch._cache_size() == compiled
