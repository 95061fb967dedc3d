"""How far Keras's float64 training drifts from the exact float64 maths because Keras on
TensorFlow rounds Python-float hyperparameters (momentum, Adam's betas, the L2 factor) to
float32 (see README, "Where Keras differs by design").

Keras and numpy-vec train the same float64 network (64-32-10 relu/softmax, cce) from the same
weights on the same batches of scikit-learn's 1797 digits (scaled to [0, 1]); numpy-vec uses
Keras's placement of Adam's epsilon, so the hyperparameters' rounding is the only difference.
After each epoch: the worst |difference| over parameters and predicted probabilities, and how
many (sample, hidden unit) pairs have ReLUs on different sides of zero. As a control for SGD,
the same with numpy-vec given the float32-rounded momentum and L2 factor (expected: rounding
level). Keras's Adam rounds β₁ and β₂ only where it casts them to the variable's dtype (the
bias corrections β^t) and uses 1 − β in float64 in the moment updates, a mix numpy-vec has no
setting for: there is no control for Adam.

    python scripts/keras_float64_drift.py [EPOCHS]
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from impls import MLPSpec, init_params, make_model  # noqa: E402

EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
CONFIGS = {
    "adam lr 1e-3, betas (0.9, 0.999), batch 64": dict(
        optimizer="adam", lr=1e-3, betas=(0.9, 0.999), batch=64
    ),
    "sgd lr 0.05, momentum 0.9, batch 64": dict(optimizer="sgd", lr=0.05, momentum=0.9, batch=64),
    "sgd lr 0.05, weight decay 0.01, batch 64": dict(
        optimizer="sgd", lr=0.05, weight_decay=0.01, batch=64
    ),
    "adam lr 1e-2, betas (0.9, 0.999), batch 64": dict(
        optimizer="adam", lr=1e-2, betas=(0.9, 0.999), batch=64
    ),
    "adam lr 1e-3, betas (0.9, 0.999), batch 8": dict(
        optimizer="adam", lr=1e-3, betas=(0.9, 0.999), batch=8
    ),
}


def f32(x):
    return float(np.float32(x))


def flips(pa, pb, X):
    za, zb = X @ pa[0][0] + pa[0][1], X @ pb[0][0] + pb[0][1]
    return int(((za > 0) != (zb > 0)).sum())


def main():
    digits = load_digits()
    X = digits.data / 16.0
    Y = np.eye(10)[digits.target]
    rng = np.random.default_rng(0)
    orders = [rng.permutation(len(X)) for _ in range(EPOCHS)]
    print(f"{len(X)} digits samples, 64-32-10 relu/softmax, cce, float64, {EPOCHS} epochs")
    for name, cfg in CONFIGS.items():
        cfg = dict(cfg)
        batch = cfg.pop("batch")
        spec = MLPSpec((64, 32, 10), dtype="float64", **cfg)
        rounded = MLPSpec(
            (64, 32, 10),
            dtype="float64",
            **{
                **cfg,
                **({"momentum": f32(cfg["momentum"])} if "momentum" in cfg else {}),
                **(
                    {"weight_decay": 2 * f32(cfg["weight_decay"] / 2)}
                    if "weight_decay" in cfg
                    else {}
                ),
            },
        )
        params = init_params(spec, seed=0)
        keras = make_model("keras", spec, params)
        exact = make_model("numpy-vec", spec, params, adam_epsilon_on="v")
        control = make_model("numpy-vec", rounded, params, adam_epsilon_on="v")
        print(f"\n{name}")
        print("epoch  keras vs exact maths   ReLU flips   keras vs float32-rounded maths")
        for epoch, order in enumerate(orders, 1):
            for model in (keras, exact, control):
                model.train_epoch(X, Y, batch, order)
            pk, pe, pc = keras.get_params(), exact.get_params(), control.get_params()
            Pk, Pe, Pc = keras.predict_proba(X), exact.predict_proba(X), control.predict_proba(X)
            drift = max(
                max(np.abs(a - b).max() for la, lb in zip(pk, pe) for a, b in zip(la, lb)),
                np.abs(Pk - Pe).max(),
            )
            ctrl = max(
                max(np.abs(a - b).max() for la, lb in zip(pk, pc) for a, b in zip(la, lb)),
                np.abs(Pk - Pc).max(),
            )
            ctrl = "-" if cfg["optimizer"] == "adam" else f"{ctrl:.1e}"
            print(f"{epoch:>5}  {drift:>20.1e}   {flips(pk, pe, X):>10}   {ctrl:>30}")


if __name__ == "__main__":
    main()
