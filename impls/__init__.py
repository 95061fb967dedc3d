"""Interchangeable MLP backends behind one contract (`BACKENDS` names the registered ones).

```python
from impls import MLPSpec, init_params, make_model, available_backends
spec = MLPSpec(layer_sizes=(64, 100, 10), loss="cce", optimizer="sgd", lr=0.1)
params = init_params(spec, seed=0)
model = make_model("numpy-vec", spec, params)
data = model.stage(X, Y)  # once: the data where the model computes
mean_loss = model.train_epoch(data, batch_size=32, order=perm)
mean_loss = model.train_epoch(X, Y, batch_size=32, order=perm)  # NumPy arrays, also accepted
P = model.predict_proba(X)
```

Importing this package imports NumPy only; a backend's framework is imported when
`make_model` builds that backend.
"""

from .base import MLPModel, check_params
from .init import SCHEMES, init_params
from .registry import BACKENDS, BackendUnavailable, available_backends, make_model
from .spec import (
    ACTIVATION_NAMES,
    DTYPE_NAMES,
    LOSS_NAMES,
    LOSS_OUTPUTS,
    OPTIMIZER_NAMES,
    OUTPUT_NAMES,
    MLPSpec,
)

__all__ = [
    "ACTIVATION_NAMES",
    "BACKENDS",
    "BackendUnavailable",
    "DTYPE_NAMES",
    "LOSS_NAMES",
    "LOSS_OUTPUTS",
    "MLPModel",
    "MLPSpec",
    "OPTIMIZER_NAMES",
    "OUTPUT_NAMES",
    "SCHEMES",
    "available_backends",
    "check_params",
    "init_params",
    "make_model",
]
