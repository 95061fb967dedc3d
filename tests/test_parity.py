"""Parity: from the same parameters and the same sample orders, every backend ends where
numpy-vec ends, after 3 epochs, for every loss x optimiser x weight decay x batch size x dtype
(Keras's share of that product is left to --run-slow and CI: see `_in_default_run`).

Two differences by design are named and bounded here:
- Keras's Adam adds epsilon to sqrt(v) with the bias correction folded into the step size;
  the others add it to sqrt(v_hat). Keras is compared with numpy-vec using Keras's placement
  (`adam_epsilon_on="v"`) at the same tolerance as everyone else, and the size of the
  placement effect itself is bounded in `test_keras_adam_epsilon_placement_effect`.
- Keras (on TensorFlow) turns Python-float hyperparameters into float32 tensors before casting
  them to the variable's dtype: in float64 work, momentum, the Adam betas and the L2 factor
  are rounded to float32. Keras's float64 parity therefore uses hyperparameters exactly
  representable in float32, and `test_keras_float64_rounds_hyperparameters` bounds the effect
  with ordinary ones.
"""

import dataclasses
import functools
import itertools

import numpy as np
import pytest
from conftest import require_backend

from impls import MLPSpec, init_params, make_model

TOL = {"float32": 1e-4, "float64": 1e-9}
N_SAMPLES, EPOCHS = 40, 3
LAYERS = (5, 8, 6, 3)
OPTIMIZERS = {"sgd": ("sgd", 0.0), "sgd+momentum": ("sgd", 0.9), "adam": ("adam", 0.0)}
ORDINARY = {"momentum": 0.9, "betas": (0.9, 0.999), "decay": 0.01}
# exactly representable in float32, so Keras's float32 rounding of them changes nothing
FLOAT32_EXACT = {"momentum": 0.875, "betas": (0.875, 0.9990234375), "decay": 2.0**-7}


def _data(kind):
    """(X, Y) for loss `kind` (one-hot targets, 0/1 for bce), or "soft" cce targets."""
    if kind == "soft":
        rng = np.random.default_rng(3)
        X = rng.normal(size=(N_SAMPLES, LAYERS[0]))
        return X, rng.dirichlet(np.ones(LAYERS[-1]), size=N_SAMPLES)
    rng = np.random.default_rng(11)
    X = rng.normal(size=(N_SAMPLES, LAYERS[0]))
    if kind == "bce":
        Y = rng.integers(0, 2, size=(N_SAMPLES, LAYERS[-1])).astype(float)
    else:
        Y = np.eye(LAYERS[-1])[rng.integers(0, LAYERS[-1], N_SAMPLES)]
    return X, Y


def _spec(loss, opt, decay, dtype, hyper):
    optimizer, momentum = OPTIMIZERS[opt]
    return MLPSpec(
        LAYERS,
        activation="relu",
        loss=loss,
        optimizer=optimizer,
        momentum=hyper["momentum"] if momentum else 0.0,
        betas=hyper["betas"],
        lr=0.05 if optimizer == "sgd" else 0.01,
        weight_decay=hyper["decay"] if decay else 0.0,
        dtype=dtype,
    )


def _train(backend, spec, data, batch_size, **options):
    """(params, predictions, epoch losses) of `backend` after EPOCHS epochs on _data(data).
    numpy-vec's runs are computed once and shared by all the backends compared with them."""
    if backend == "numpy-vec":
        return _reference(spec, data, batch_size, tuple(sorted(options.items())))
    return _run(backend, spec, data, batch_size, **options)


@functools.cache
def _reference(spec, data, batch_size, options):
    result = _run("numpy-vec", spec, data, batch_size, **dict(options))
    params, proba, losses = result
    for a in (proba, losses, *[x for pair in params for x in pair]):
        a.flags.writeable = False  # shared between tests: nobody may change it
    return result


def _run(backend, spec, data, batch_size, **options):
    X, Y = _data(data)
    model = make_model(backend, spec, init_params(spec, seed=5), **options)
    losses = []
    for epoch in range(EPOCHS):
        order = np.random.default_rng(100 + epoch).permutation(N_SAMPLES)
        losses.append(model.train_epoch(X, Y, batch_size=batch_size, order=order))
    return model.get_params(), model.predict_proba(X), np.array(losses)


def _worst_difference(a, b):
    (params_a, proba_a, _), (params_b, proba_b, _) = a, b
    diffs = [np.abs(x - y).max() for pa, pb in zip(params_a, params_b) for x, y in zip(pa, pb)]
    return max(max(diffs), np.abs(proba_a - proba_b).max())


LOSSES, DECAYS, BATCH_SIZES, DTYPES = (
    ("cce", "bce", "mse"),
    (False, True),
    (1, 7, 32),
    ("float32", "float64"),
)
CASES = [
    (loss, opt, decay, batch_size)
    for loss in LOSSES
    for opt in OPTIMIZERS
    for decay in DECAYS
    for batch_size in BATCH_SIZES
]


def _in_default_run(backend, loss, opt, decay, batch_size, dtype):
    """Every case, except Keras's: building and tracing a Keras model costs about 0.3 s, most
    of the suite's parity time over 108 cases. The default run gives Keras each loss x
    optimiser x weight decay x dtype at one batch size, turning so that each batch size meets
    every loss, optimiser, weight decay and dtype (36 cases); --run-slow (and CI) runs all."""
    if backend != "keras":
        return True
    turn = LOSSES.index(loss) + list(OPTIMIZERS).index(opt) + DECAYS.index(decay)
    return BATCH_SIZES[(turn + DTYPES.index(dtype)) % len(BATCH_SIZES)] == batch_size


PARAMS = [
    pytest.param(
        backend,
        *case,
        dtype,
        id=f"{backend}-{case[0]}-{case[1]}-{'decay' if case[2] else 'nodecay'}-b{case[3]}-{dtype}",
        marks=() if _in_default_run(backend, *case, dtype) else pytest.mark.slow,
    )
    for backend in ("numpy-loop", "torch", "keras")
    for case in CASES
    for dtype in DTYPES
]


def test_keras_default_cases_meet_every_pair_of_values():
    """The default run's Keras cases: each loss x optimiser x decay x dtype once, and every
    value of each axis beside every value of each other axis (batch size included)."""
    chosen = [
        (*case, dtype)
        for case in CASES
        for dtype in DTYPES
        if _in_default_run("keras", *case, dtype)
    ]
    axes = [LOSSES, list(OPTIMIZERS), DECAYS, BATCH_SIZES, DTYPES]
    assert len(chosen) == len(CASES) * len(DTYPES) // len(BATCH_SIZES)
    assert len({(c[0], c[1], c[2], c[4]) for c in chosen}) == len(chosen)
    for i, j in itertools.combinations(range(len(axes)), 2):
        assert {(c[i], c[j]) for c in chosen} == set(itertools.product(axes[i], axes[j]))


@pytest.mark.parametrize("backend,loss,opt,decay,batch_size,dtype", PARAMS)
def test_backend_matches_numpy_vec(backend, loss, opt, decay, batch_size, dtype):
    require_backend(backend)
    hyper = FLOAT32_EXACT if (backend == "keras" and dtype == "float64") else ORDINARY
    spec = _spec(loss, opt, decay, dtype, hyper)
    # Keras places Adam's epsilon differently by design (module docstring).
    options = {"adam_epsilon_on": "v"} if backend == "keras" else {}
    reference = _train("numpy-vec", spec, loss, batch_size, **options)
    result = _train(backend, spec, loss, batch_size)
    assert _worst_difference(result, reference) <= TOL[dtype]
    # the epoch losses agree too (Keras accumulates its loss tracker in float32)
    np.testing.assert_allclose(result[2], reference[2], rtol=1e-5, atol=1e-6)


def test_keras_adam_epsilon_placement_effect():
    """Keras vs numpy-vec with the standard placement: the gap is the placement, nothing else.

    eps enters Keras's step as eps / sqrt(1 - beta2**t), up to 31.6x larger in the first
    step, so updates of parameters with small gradients differ most. eps = 1e-4 here makes
    the effect plain to see. The gap is measured against its own cause: removing the placement
    difference shrinks it below the shared float32 tolerance, and the placement effect alone
    (numpy-vec vs numpy-vec) equals it.
    """
    require_backend("keras")
    spec = dataclasses.replace(_spec("cce", "adam", False, "float32", ORDINARY), eps=1e-4)
    keras_run = _train("keras", spec, "cce", 1)
    standard = _train("numpy-vec", spec, "cce", 1)
    kerasish = _train("numpy-vec", spec, "cce", 1, adam_epsilon_on="v")
    gap = _worst_difference(keras_run, standard)
    placement_effect = _worst_difference(kerasish, standard)
    assert _worst_difference(keras_run, kerasish) <= TOL["float32"]
    assert gap == pytest.approx(placement_effect, abs=TOL["float32"])
    assert gap > 10 * TOL["float32"]  # a real, visible effect at lr 0.01 after 120 steps
    assert gap < 0.05


def test_keras_float64_rounds_hyperparameters():
    """With ordinary hyperparameters (0.9, 0.999, 0.01), Keras's float64 run drifts from the
    others by float32 rounding of those constants: well above 1e-9, well below 1e-5."""
    require_backend("keras")
    for opt in ("sgd+momentum", "adam"):
        spec = _spec("cce", opt, True, "float64", ORDINARY)
        gap = _worst_difference(
            _train("keras", spec, "cce", 7),
            _train("numpy-vec", spec, "cce", 7, adam_epsilon_on="v"),
        )
        assert 1e-9 < gap < 1e-5, opt


@pytest.mark.parametrize("backend", ["numpy-loop", "torch", "keras"])
def test_soft_targets_follow_the_same_cce(backend):
    """cce with non-one-hot targets: -sum(y log softmax(z)) everywhere (torch's probability
    path of CrossEntropyLoss rather than its class-index path)."""
    require_backend(backend)
    spec = _spec("cce", "sgd", False, "float64", FLOAT32_EXACT)
    gap = _worst_difference(_train(backend, spec, "soft", 7), _train("numpy-vec", spec, "soft", 7))
    assert gap <= TOL["float64"]
