"""Every backend learns digits: 64-100-10 relu/softmax, cce, adam 1e-3, batch 32, 30 epochs."""

import numpy as np

from impls import MLPSpec, init_params, make_model


def test_digits_accuracy(backend, digits):
    X_tr, Y_tr, X_te, Y_te = digits
    spec = MLPSpec((64, 100, 10), optimizer="adam", lr=1e-3)
    model = make_model(backend, spec, init_params(spec, seed=0))
    rng = np.random.default_rng(0)
    for _ in range(30):
        model.train_epoch(X_tr, Y_tr, 32, rng.permutation(len(X_tr)))
    accuracy = (model.predict_proba(X_te).argmax(1) == Y_te.argmax(1)).mean()
    print(f"{backend}: digits test accuracy {accuracy:.4f}")
    assert accuracy >= 0.97
