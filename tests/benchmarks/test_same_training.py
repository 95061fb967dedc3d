"""The check every overhead and target benchmark makes of its two sides
(conftest.assert_same_training) passes on the same training and fails on other work: another
sample order, another learning rate, a layer left untrained. numpy-vec against itself, so the
only differences are the ones each case puts there."""

import numpy as np
import pytest

from impls import MLPSpec, init_params, make_model

from .conftest import assert_same_training

SIZES = (784, 256, 128, 10)
N = 2048


def _trained(optimizer, batch_size, order, lr=None):
    lr = lr or (0.01 if optimizer == "sgd" else 1e-3)
    spec = MLPSpec(SIZES, loss="cce", optimizer=optimizer, lr=lr, dtype="float32")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, SIZES[0]), dtype=np.float32)
    Y = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], N)]
    model = make_model("numpy-vec", spec, init_params(spec, seed=0))
    model.train_epoch(model.stage(X, Y), batch_size, order)
    return spec, model.get_params()


CASES = [(optimizer, batch) for optimizer in ("sgd", "adam") for batch in (8, 1024)]


@pytest.mark.parametrize("optimizer, batch_size", CASES)
def test_the_same_training_passes(optimizer, batch_size):
    order = np.arange(N)
    spec, ours = _trained(optimizer, batch_size, order)
    _, again = _trained(optimizer, batch_size, order.copy())
    assert_same_training(ours, again, init_params(spec, seed=0))


@pytest.mark.parametrize("optimizer, batch_size", CASES)
def test_other_work_fails(optimizer, batch_size):
    order = np.arange(N)
    spec, ours = _trained(optimizer, batch_size, order)
    start = init_params(spec, seed=0)
    other_order = _trained(optimizer, batch_size, np.random.default_rng(1).permutation(N))[1]
    other_lr = _trained(optimizer, batch_size, order, lr=1.05 * spec.lr)[1]
    first_layer_frozen = [start[0], *ours[1:]]
    for other in (other_order, other_lr, first_layer_frozen):
        with pytest.raises(AssertionError):
            assert_same_training(ours, other, start)


def test_rounding_of_one_weight_passes():
    """What Adam makes of two BLAS kernels' rounding: one weight of the first layer off by
    1.1e-5 (measured between numpy-vec and torch on an AVX-512 Xeon), the rest identical."""
    spec, ours = _trained("adam", 1024, np.arange(N))
    nudged = [(W.copy(), b.copy()) for W, b in ours]
    nudged[0][0][558, 120] += 1.1e-5
    assert_same_training(ours, nudged, init_params(spec, seed=0))
