"""MLPSpec validation: every invalid field raises ValueError naming what was given."""

import math

import pytest

from impls import MLPSpec


def test_defaults_and_derived_fields():
    spec = MLPSpec((64, 100, 10))
    assert (spec.activation, spec.output, spec.loss, spec.optimizer) == (
        "relu",
        "softmax",
        "cce",
        "sgd",
    )
    assert spec.n_params == 64 * 100 + 100 + 100 * 10 + 10
    assert spec.n_weights == 64 * 100 + 100 * 10
    assert MLPSpec((4, 2), loss="bce").output == "sigmoid"
    assert MLPSpec([4, 3, 2]).layer_sizes == (4, 3, 2)
    with pytest.raises(AttributeError):
        spec.lr = 1.0  # frozen


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"layer_sizes": (64,)}, "at least two positive integers"),
        ({"layer_sizes": (64, 0, 10)}, r"\(64, 0, 10\)"),
        ({"layer_sizes": (64, 2.5, 10)}, "positive integers"),
        ({"layer_sizes": (64, True, 10)}, "positive integers"),
        ({"layer_sizes": "64x10"}, "sequence of positive integers"),
        ({"activation": "gelu"}, "unknown activation 'gelu'; valid: relu, sigmoid, tanh"),
        ({"activation": "rleu"}, "did you mean 'relu'"),
        ({"output": "softplus"}, "unknown output activation 'softplus'"),
        ({"loss": "hinge"}, "unknown loss 'hinge'; valid: cce, bce, mse"),
        ({"loss": "cce", "output": "sigmoid"}, "loss 'cce' cannot be used with output 'sigmoid'"),
        ({"loss": "bce", "output": "softmax"}, "loss 'bce' cannot be used with output 'softmax'"),
        ({"loss": "cce", "output": "linear"}, "needs output 'softmax'"),
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; valid: sgd, adam"),
        ({"optimizer": "adma"}, "did you mean 'adam'"),
        ({"dtype": "float16"}, "unknown dtype 'float16'; valid: float32, float64"),
        ({"lr": 0}, "lr must be a finite number > 0, got 0"),
        ({"lr": -0.1}, "lr must be"),
        ({"lr": math.inf}, "lr must be"),
        ({"lr": math.nan}, "lr must be"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\), got 1.0"),
        ({"momentum": -0.1}, "momentum must be"),
        ({"optimizer": "adam", "momentum": 0.9}, "momentum applies to optimizer 'sgd' only"),
        ({"weight_decay": -1e-4}, "weight_decay must be a finite number >= 0"),
        ({"betas": (0.9, 1.0)}, "betas must be two numbers"),
        ({"betas": (0.9,)}, "betas must be two numbers"),
        ({"eps": 0.0}, "eps must be"),
        ({"device": "gpu"}, "unknown device 'gpu'"),
    ],
)
def test_invalid_specs_raise(kwargs, message):
    kwargs = {"layer_sizes": (4, 3, 2), **kwargs}
    with pytest.raises(ValueError, match=message):
        MLPSpec(**kwargs)


def test_softmax_needs_two_outputs():
    with pytest.raises(ValueError, match="softmax output needs at least 2 units"):
        MLPSpec((4, 1))
    assert MLPSpec((4, 1), loss="bce").n_outputs == 1
