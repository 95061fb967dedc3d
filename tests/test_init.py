"""init_params: schemes, biases, determinism and independence from the backend."""

import numpy as np
import pytest

from impls import MLPSpec, init_params

SPEC = MLPSpec((300, 200, 10), dtype="float64")


def test_default_is_glorot_uniform_with_zero_biases():
    params = init_params(SPEC, seed=0)
    W, b = params[0]
    limit = np.sqrt(6 / (300 + 200))
    assert W.shape == (300, 200) and np.abs(W).max() <= limit
    assert np.abs(W).max() > 0.99 * limit  # spans the range
    assert W.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert not b.any() and not params[1][1].any()


@pytest.mark.parametrize(
    "scheme,scale,expected_std",
    [
        ("he_normal", None, np.sqrt(2 / 300)),
        ("normal", 0.1, 0.1),
        ("normal", None, 0.05),
        ("uniform", 0.01, 0.01 / np.sqrt(3)),
        ("uniform", None, 0.05 / np.sqrt(3)),
        ("standard_normal", None, 1.0),
    ],
)
def test_schemes(scheme, scale, expected_std):
    W, b = init_params(SPEC, seed=1, scheme=scheme, scale=scale)[0]
    assert W.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(W.mean()) < 0.01 * max(expected_std, 0.1)
    if scheme == "uniform":
        assert np.abs(W).max() <= (scale or 0.05)


def test_biases_drawn_like_weights():
    W, b = init_params(SPEC, seed=1, scheme="uniform", scale=0.5, bias="like_weights")[0]
    assert b.shape == (200,) and np.abs(b).max() <= 0.5 and b.std() > 0.2


def test_deterministic_and_dtype_consistent():
    a = init_params(SPEC, seed=4, scheme="he_normal")
    b = init_params(SPEC, seed=4, scheme="he_normal")
    c = init_params(SPEC, seed=5, scheme="he_normal")
    assert all(np.array_equal(x, y) for pa, pb in zip(a, b) for x, y in zip(pa, pb))
    assert not np.array_equal(a[0][0], c[0][0])
    f32 = init_params(MLPSpec((300, 200, 10), dtype="float32"), seed=4, scheme="he_normal")
    assert f32[0][0].dtype == np.float32
    np.testing.assert_array_equal(f32[0][0], a[0][0].astype(np.float32))


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown init scheme 'xavier'"):
        init_params(SPEC, scheme="xavier")
    with pytest.raises(ValueError, match="takes no scale"):
        init_params(SPEC, scheme="glorot_uniform", scale=0.1)
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        init_params(SPEC, scheme="normal", scale=-1)
    with pytest.raises(ValueError, match="unknown bias init 'ones'"):
        init_params(SPEC, bias="ones")
