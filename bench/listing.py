"""`python -m bench list`: what can be run here, and why not where it cannot."""

from __future__ import annotations

from impls import (
    ACTIVATION_NAMES,
    BACKENDS,
    LOSS_NAMES,
    LOSS_OUTPUTS,
    OPTIMIZER_NAMES,
    available_backends,
)
from impls.registry import plugin_backends

PREPROCESSING_TEXT = {
    "scale": "divided by the largest absolute training value: pixels to [0, 1] (default)",
    "minmax": "each sample scaled to [0, 1] by its own minimum and maximum",
    "standardize": "each feature to mean 0, std 1, fitted on the training set",
    "none": "raw values",
}
OPTIMIZER_TEXT = {
    "sgd": "stochastic gradient descent, optional classical momentum (--momentum)",
    "adam": "Adam with bias correction (betas 0.9, 0.999)",
}
ACTIVATION_TEXT = {
    "relu": "max(z, 0)",
    "sigmoid": "1 / (1 + exp(-z))",
    "tanh": "hyperbolic tangent",
}


def _described(names, texts: dict) -> list[tuple[str, str]]:
    return [(name, texts.get(name, "")) for name in names]


def _table(title, rows) -> list[str]:
    width = max((len(name) for name, _ in rows), default=0)
    return [title, *(f"  {name:<{width}}  {text}" for name, text in rows), ""]


def render_listing(data_dir=None) -> str:
    from bench.datasets import DATASETS, PREPROCESSING, dataset_names, dataset_status
    from bench.sweep.presets import PRESETS

    lines = []
    backends = available_backends()
    lines += _table(
        "backends",
        [
            (
                name,
                BACKENDS[name].description
                + f" ({', '.join(BACKENDS[name].devices)})"
                + ("" if reason is None else f"  [unavailable: {reason}]"),
            )
            for name, reason in backends.items()
        ]
        + [  # users' own backends installed as entry points (see the README)
            (name, f"{target} (mlp_bench.backends entry point)")
            for name, target in plugin_backends().items()
        ],
    )
    rows = []
    for name in dataset_names():
        base = name.split(":", 1)[0]
        status = dataset_status(base, data_dir=data_dir)
        text = DATASETS[base].description
        rows.append((name, text + ("" if status is None else f"  [{status}]")))
    lines += _table("datasets", rows)
    lines += _table("preprocessing", _described(PREPROCESSING, PREPROCESSING_TEXT))
    lines += _table(
        "losses", [(name, "output " + " | ".join(LOSS_OUTPUTS[name])) for name in LOSS_NAMES]
    )
    lines += _table("optimizers", _described(OPTIMIZER_NAMES, OPTIMIZER_TEXT))
    lines += _table("activations", _described(ACTIVATION_NAMES, ACTIVATION_TEXT))
    lines += _table(
        "presets",
        [
            (name, p.description + (f" (seed {p.seed})" if p.seed else ""))
            for name, p in PRESETS.items()
        ],
    )
    return "\n".join(lines).rstrip() + "\n"
