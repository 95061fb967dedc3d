"""Backend names, what each needs installed, and `make_model`.

Nothing here imports a framework: availability is read from installed package metadata, and a
backend's module (which imports its framework) is loaded only by `make_model`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass

from .spec import MLPSpec, unknown_name_message


class BackendUnavailable(ImportError):
    """A backend whose framework is missing or cannot be imported; the message says what to do."""


@dataclass(frozen=True)
class Backend:
    name: str
    module: str  # impls module holding the model class
    cls: str
    extra: str | None  # pip extra that installs what it needs
    description: str


BACKENDS = {
    b.name: b
    for b in (
        Backend(
            "numpy-loop",
            "impls.numpy_loop",
            "NumpyLoopMLP",
            None,
            "NumPy, forward and backward one sample at a time in a Python loop",
        ),
        Backend(
            "numpy-vec",
            "impls.numpy_vec",
            "NumpyVecMLP",
            None,
            "NumPy, whole batches in matrix form",
        ),
        Backend(
            "keras",
            "impls.keras_mlp",
            "KerasMLP",
            "keras",
            "Keras 3 Sequential of Dense layers, trained with fit",
        ),
        Backend(
            "torch",
            "impls.torch_mlp",
            "TorchMLP",
            "torch",
            "PyTorch nn.Sequential of nn.Linear with torch.optim",
        ),
    )
}

# Keras 3 backend name -> the module it needs.
KERAS_BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def install_hint(extra: str) -> str:
    return f'pip install "mlp-bench[{extra}]"'


def keras_backend_name() -> str:
    """The Keras backend Keras will use: $KERAS_BACKEND, else tensorflow."""
    return os.environ.get("KERAS_BACKEND", "tensorflow").strip() or "tensorflow"


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torch_missing() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return f"PyTorch is not installed: {install_hint('torch')}"
    return None


def _keras_missing() -> str | None:
    version = _installed_version("keras")
    if importlib.util.find_spec("keras") is None or version is None:
        return f"Keras is not installed: {install_hint('keras')}"
    if int(version.split(".")[0]) < 3:
        return f"Keras {version} is installed but Keras 3 is needed: {install_hint('keras')}"
    kb = keras_backend_name()
    if kb not in KERAS_BACKEND_MODULES:
        return (
            f"KERAS_BACKEND={kb!r} cannot train this model; "
            f"use one of {', '.join(KERAS_BACKEND_MODULES)}"
        )
    if importlib.util.find_spec(KERAS_BACKEND_MODULES[kb]) is None:
        hint = install_hint("keras") if kb == "tensorflow" else f"pip install {kb}"
        return f"Keras backend {kb!r} is not installed: {hint}"
    return None


# backend -> check returning None when its framework is installed, else the reason
_REQUIREMENTS = {"keras": _keras_missing, "torch": _torch_missing}


def _missing_reason(name: str) -> str | None:
    check = _REQUIREMENTS.get(name)
    return None if check is None else check()


def available_backends() -> dict[str, str | None]:
    """Backend name -> None if it can be used here, else the reason and how to fix it."""
    return {name: _missing_reason(name) for name in BACKENDS}


def backend_class(name: str):
    """The model class of backend `name`, importing its framework (and only its own)."""
    if name not in BACKENDS:
        raise ValueError(unknown_name_message("backend", name, BACKENDS))
    reason = _missing_reason(name)
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} is unavailable: {reason}")
    backend = BACKENDS[name]
    try:
        module = importlib.import_module(backend.module)
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend {name!r} failed to import its framework ({exc}); "
            f"reinstall with {install_hint(backend.extra)}"
        ) from exc
    return getattr(module, backend.cls)


def make_model(name: str, spec: MLPSpec, params, **options):
    """Build backend `name`'s model of `spec`, starting from `params`.

    `options` are backend-specific keywords (see each model class). Raises ValueError for an
    unknown name or a spec the backend cannot run, BackendUnavailable if its framework is
    missing.
    """
    return backend_class(name)(spec, params, **options)
