"""Backend names, what each needs installed, and `make_model`.

Nothing here imports a framework: availability is read from installed package metadata, and a
backend's module (which imports its framework) is loaded only by `make_model`.

Besides the registered names, a backend can be a user's own class, given by reference:
`module:Class` (a module on the path), `path/to/file.py:Class`, or the name of a
`mlp_bench.backends` entry point of an installed package (see `plugin_backends`). Such a class
needs no base class: `__init__(spec, params)`, `train_epoch(X, Y, batch_size, order)`,
`predict_proba(X)` and `get_params()` are the whole protocol (`set_params` and `stage` are
optional).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
from dataclasses import dataclass

from .conventions import wrap_class
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
    # environment its framework must be loaded with (set before the import): such a backend
    # needs a process where that framework was not loaded otherwise
    process_env: tuple[tuple[str, str], ...] = ()
    adam_epsilon_on: str = "v_hat"  # where its Adam adds epsilon (see impls.core.adam_step)
    # parity tolerances wider than the suite's (1e-4 float32, 1e-9 float64), by dtype, where
    # the library itself computes in lower precision; the reason is in `tolerance_reason`
    tolerance: tuple[tuple[str, float], ...] = ()
    tolerance_reason: str = ""
    devices: tuple[str, ...] = ("cpu",)  # the kinds of device it can compute on


_KERAS_FLOAT64 = (
    "Keras's type promotion makes 64-bit results 32-bit on its non-TensorFlow backends "
    "(keras/src/backend/common/dtypes.py, BIT64_TO_BIT32_DTYPE): parts of float64 work "
    "(e.g. ops.mean, so the bce and mse means over the outputs) run in float32"
)


def _keras_on(keras_backend, label, extra_env, float64_tolerance):
    """The keras backend's code on another Keras 3 backend, in worker processes that select it."""
    return Backend(
        f"keras-{keras_backend}",
        "impls.keras_mlp",
        "KerasMLP",
        f"keras-{keras_backend}",
        f"the keras backend's code on Keras 3's {label} backend",
        process_env=(("KERAS_BACKEND", keras_backend), *extra_env),
        adam_epsilon_on="v",
        tolerance=(("float64", float64_tolerance),),
        tolerance_reason=_KERAS_FLOAT64,
    )


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
            "cupy",
            "impls.cupy_mlp",
            "CupyMLP",
            "cupy-cuda13",
            "numpy-vec's code on a CUDA GPU, with CuPy arrays",
            devices=("cuda",),
        ),
        Backend(
            "keras",
            "impls.keras_mlp",
            "KerasMLP",
            "keras",
            "Keras 3 Sequential of Dense layers, trained with fit",
            adam_epsilon_on="v",
        ),
        Backend(
            "torch",
            "impls.torch_mlp",
            "TorchMLP",
            "torch",
            "PyTorch nn.Sequential of nn.Linear with torch.optim",
            devices=("cpu", "cuda"),
        ),
        Backend(
            "jax",
            "impls.jax_mlp",
            "JaxMLP",
            "jax",
            "JAX: parameter pytree, value_and_grad, a jitted step scanned over the epoch, optax",
            devices=("cpu", "cuda"),
        ),
        _keras_on("jax", "JAX", (("JAX_ENABLE_X64", "1"),), float64_tolerance=1e-5),
        _keras_on("torch", "PyTorch", (), float64_tolerance=1e-5),
        Backend(
            "sklearn",
            "impls.sklearn_mlp",
            "SklearnMLP",
            None,
            "scikit-learn MLPClassifier / MLPRegressor, trained with partial_fit",
            adam_epsilon_on="v",
        ),
    )
}


def parity_tolerance(name: str, dtype: str) -> float:
    """The worst difference from numpy-vec backend `name` is held to in `dtype`."""
    default = {"float32": 1e-4, "float64": 1e-9}[dtype]
    backend = BACKENDS.get(name)
    return dict(backend.tolerance).get(dtype, default) if backend else default


# What `bench run` runs when no backend is named: the original four (the peers are a preset).
DEFAULT_BACKENDS = ("numpy-loop", "numpy-vec", "keras", "torch")

ENTRY_POINT_GROUP = "mlp_bench.backends"

# Keras 3 backend name -> the module it needs.
KERAS_BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def install_hint(extra: str) -> str:
    return f'pip install "mlp-bench[{extra}]"'


# what installs a backend's library where it has no mlp-bench extra of its own
_SKLEARN_INSTALL = 'pip install "scikit-learn>=1.3"'
_INSTALL_COMMANDS = {"sklearn": _SKLEARN_INSTALL}


def backend_install_hint(name: str) -> str | None:
    """The command that (re)installs registered backend `name`'s library; None for the NumPy
    backends (NumPy is always installed: their failure is a fault, not a missing library)."""
    if name in _INSTALL_COMMANDS:
        return _INSTALL_COMMANDS[name]
    backend = BACKENDS.get(name)
    return install_hint(backend.extra) if backend is not None and backend.extra else None


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


def _jax_missing() -> str | None:
    for module in ("jax", "optax"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: {install_hint('jax')}"
    return None


def cupy_install_hint() -> str:
    """CuPy comes as one wheel per CUDA major version (its extras here: cupy-cuda12/13)."""
    return (
        f"{install_hint('cupy-cuda13')} for CUDA 13, or {install_hint('cupy-cuda12')} for "
        "CUDA 12 (nvidia-smi shows the driver's CUDA version)"
    )


def _cupy_missing() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return f"CuPy is not installed: {cupy_install_hint()}"
    return None


def _sklearn_missing() -> str | None:
    if importlib.util.find_spec("sklearn") is None:
        return f"scikit-learn is not installed: {_SKLEARN_INSTALL}"
    return None


def _keras_missing(kb: str | None = None) -> str | None:
    extra = "keras" if kb is None else f"keras-{kb}"
    version = _installed_version("keras")
    if importlib.util.find_spec("keras") is None or version is None:
        return f"Keras is not installed: {install_hint(extra)}"
    if int(version.split(".")[0]) < 3:
        return f"Keras {version} is installed but Keras 3 is needed: {install_hint(extra)}"
    if kb is not None:  # keras-jax, keras-torch: the Keras backend is part of the name
        if importlib.util.find_spec(kb) is None:
            return f"Keras backend {kb!r} is not installed: {install_hint(extra)}"
        return None
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
_REQUIREMENTS = {
    "keras": _keras_missing,
    "torch": _torch_missing,
    "cupy": _cupy_missing,
    "jax": _jax_missing,
    "keras-jax": lambda: _keras_missing("jax"),
    "keras-torch": lambda: _keras_missing("torch"),
    "sklearn": _sklearn_missing,
}


def _missing_reason(name: str) -> str | None:
    check = _REQUIREMENTS.get(name)
    return None if check is None else check()


def available_backends() -> dict[str, str | None]:
    """Backend name -> None if it can be used here, else the reason and how to fix it."""
    return {name: _missing_reason(name) for name in BACKENDS}


def backend_devices(name: str) -> tuple[str, ...]:
    """The kinds of device backend `name` computes on ("cpu", "cuda"); a user's own class: the
    CPU (it receives NumPy arrays)."""
    backend = BACKENDS.get(name)
    return backend.devices if backend is not None else ("cpu",)


def _prepare_process(backend: Backend) -> None:
    """Set the environment `backend`'s framework must be loaded with, if it is not loaded yet.

    Keras reads $KERAS_BACKEND once, when it is first imported: keras-jax and keras-torch
    therefore need a process where Keras has not been loaded with another backend (`bench`
    runs every backend in a worker process of its own).
    """
    env = dict(backend.process_env)
    wanted = env.get("KERAS_BACKEND")
    if wanted is not None and "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != wanted:
            raise BackendUnavailable(
                f"backend {backend.name!r} needs Keras on {wanted}, but this process already "
                f"loaded Keras on {loaded}; run it in a process of its own"
            )
    os.environ.update(env)


def backend_class(name: str):
    """The model class of backend `name`, importing its framework (and only its own)."""
    if name not in BACKENDS:
        return plugin_class(name)
    reason = _missing_reason(name)
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} is unavailable: {reason}")
    backend = BACKENDS[name]
    _prepare_process(backend)
    try:
        module = importlib.import_module(backend.module)
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend {name!r} failed to import its framework ({exc}); "
            f"reinstall with {backend_install_hint(name)}"
        ) from exc
    return getattr(module, backend.cls)


def make_model(name: str, spec: MLPSpec, params, **options):
    """Build backend `name`'s model of `spec`, starting from `params`.

    `name` is a registered backend or a user's class by reference (see `plugin_class`).
    `options` are backend-specific keywords (see each model class). Raises ValueError for an
    unknown name or a spec the backend cannot run (NotImplementedError where the backend's
    library cannot express the spec), BackendUnavailable if its framework is missing.
    """
    return backend_class(name)(spec, params, **options)


# ------------------------------------------------------------------ users' own backends


def plugin_backends() -> dict[str, str]:
    """Backends installed packages declare as `mlp_bench.backends` entry points: name -> target.

    A package declares one in its pyproject.toml:
        [project.entry-points."mlp_bench.backends"]
        my-mlp = "my_package.model:MyMLP"
    """
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep.value for ep in found if ep.name not in BACKENDS}


def file_safe(name: str) -> str:
    """`name` usable in a file name: a reference such as path/to/file.py:Class becomes
    path_to_file.py_Class."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "backend"


def split_reference(name: str) -> tuple[str, str] | None:
    """("module or path", "Class") for a `module:Class` / `path/file.py:Class` name, else None."""
    target, sep, attr = name.rpartition(":")
    if not sep or not target or not attr.isidentifier():
        return None
    if target.endswith(".py") or all(part.isidentifier() for part in target.split(".")):
        return target, attr
    return None


def check_backend_name(name: str) -> str:
    """`name` if it names a backend here (registered, entry point, or a reference whose module
    or file exists and defines the class), else ValueError saying what is valid. Imports
    nothing. A `path/file.py:Class` reference is returned with its path made absolute, so that
    a run folder's sweep names the same file from any folder and on any worker."""
    if not isinstance(name, str):
        raise ValueError(f"backend names are strings, got {name!r}")
    if name in BACKENDS or name in plugin_backends():
        return name
    ref = split_reference(name)
    if ref is None:
        raise ValueError(
            unknown_name_message("backend", name, [*BACKENDS, *plugin_backends()])
            + "; or your own class as module:Class or path/to/file.py:Class"
        )
    target, attr = ref
    if target.endswith(".py"):
        if not os.path.isfile(target):
            raise ValueError(f"backend {name!r}: no file {target!r}")
        source, name = target, f"{os.path.abspath(os.path.expanduser(target))}:{attr}"
    else:
        try:
            found = importlib.util.find_spec(target)
        except (ImportError, ValueError):  # a parent package that is missing or broken
            found = None
        if found is None:
            raise ValueError(
                f"backend {name!r}: no module {target!r} on the Python path "
                f"(run from its folder, set PYTHONPATH, or give path/to/{target}.py:{attr})"
            )
        source = found.origin if (found.origin or "").endswith(".py") else None
    defined = _top_level_names(source) if source else None
    if defined is not None and attr not in defined:
        classes = sorted(n for n in defined if n[:1].isupper())
        text = f"backend {name!r}: {target!r} defines no {attr!r}"
        close = difflib.get_close_matches(attr, classes, n=1, cutoff=0.5)
        if close:
            text += f" (did you mean {close[0]!r}?)"
        raise ValueError(text + (f"; its classes: {', '.join(classes)}" if classes else ""))
    return name


def _top_level_names(path: str) -> set[str] | None:
    """The names a Python file binds at its top level (classes, functions, assignments,
    imports), read without running it; None when that cannot be known (a syntax error, a
    `from ... import *`, or names set through globals())."""
    import ast

    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
        if isinstance(node, ast.Name) and node.id == "globals":
            return None
    for node in tree.body:
        targets = [node]
        if isinstance(node, (ast.If, ast.Try)):  # names bound under `if` / `try` count too
            targets = [n for n in ast.walk(node) if isinstance(n, ast.stmt)]
        for stmt in targets:
            if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(stmt.name)
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in stmt.names)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for target in stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def plugin_source(name: str) -> dict | None:
    """{"file", "class", "sha256"} of a user's backend given as `path/file.py:Class` or
    `module:Class` (the file its class is read from and a SHA-256 of that file's bytes), or
    of an entry point's target; None for a registered backend or a module without a file."""
    import hashlib

    if name in BACKENDS:
        return None
    ref = split_reference(plugin_backends().get(name, name))
    if ref is None:
        return None
    target, attr = ref
    if target.endswith(".py"):
        path = os.path.abspath(target)
    else:
        try:
            found = importlib.util.find_spec(target)
        except (ImportError, ValueError):
            return None
        if found is None or not found.origin or not os.path.isfile(found.origin):
            return None
        path = found.origin
    try:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None
    return {"file": path, "class": attr, "sha256": digest}


def _load_file(path: str):
    path = os.path.abspath(path)
    module_name = "mlp_bench_user_" + os.path.splitext(os.path.basename(path))[0]
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def plugin_class(name: str):
    """The class a user's backend name refers to, importing its module.

    Raises ValueError if `name` refers to nothing, BackendUnavailable if its module fails to
    import (the message has the error) or lacks the class or a method of the protocol.
    """
    entry_points = plugin_backends()
    reference = entry_points.get(name, name)
    ref = split_reference(reference)
    if ref is None:
        check_backend_name(name)  # raises with the valid names
        raise ValueError(f"backend {name!r} is not a module:Class reference")
    target, attr = ref
    try:
        module = _load_file(target) if target.endswith(".py") else importlib.import_module(target)
    except Exception as exc:
        raise BackendUnavailable(
            f"backend {name!r}: importing {target!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    cls = getattr(module, attr, None)
    if cls is None:
        raise BackendUnavailable(f"backend {name!r}: {target!r} has no {attr!r}")
    missing = [m for m in PROTOCOL if not callable(getattr(cls, m, None))]
    if missing:
        raise BackendUnavailable(
            f"backend {name!r}: {attr} lacks {', '.join(missing)} (the protocol: "
            "__init__(spec, params), train_epoch(X, Y, batch_size, order), predict_proba(X), "
            "get_params())"
        )
    return wrap_class(cls, f"backend {name!r}: {attr}")  # declared conventions applied


PROTOCOL = ("train_epoch", "predict_proba", "get_params")
