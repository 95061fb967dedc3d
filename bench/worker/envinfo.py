"""What a run's figures were measured on: machine, versions, BLAS, project commit."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

PACKAGES = (
    *("numpy", "scipy", "pandas", "scikit-learn", "torch", "tensorflow", "keras"),
    *("jax", "jaxlib", "optax"),
)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def blas() -> str:
    """NumPy's BLAS as threadpoolctl sees it: library, version, then the kernel it chose for
    this CPU and its threading layer where it says, e.g. 'openblas 0.3.27 (Haswell, pthreads)'.
    The kernel matters: OpenBLAS picks it at load (OPENBLAS_CORETYPE overrides the pick).

    A process may hold several BLAS libraries (SciPy's wheels bring an OpenBLAS of their own,
    often another version): the one recorded is NumPy's, found by its file lying in NumPy's
    package or its wheel's `numpy.libs` folder (`numpy_blas_pool`)."""
    import numpy  # noqa: F401  (loads the BLAS so threadpoolctl can see it)
    from threadpoolctl import threadpool_info

    pool = numpy_blas_pool([p for p in threadpool_info() if p.get("user_api") == "blas"])
    if pool is None:
        return "unknown"
    details = [pool.get(k) for k in ("architecture", "threading_layer")]
    details = [d for d in details if d and d != "unknown"]
    text = f"{pool.get('internal_api')} {pool.get('version')}"
    return f"{text} ({', '.join(details)})" if details else text


def numpy_blas_pool(pools: list[dict]) -> dict | None:
    """Of threadpoolctl's BLAS entries, NumPy's: the one whose file lies in NumPy's package
    (macOS wheels: numpy/.dylibs) or beside it in `numpy.libs` (Linux and Windows wheels);
    else the first (a NumPy built against the system's BLAS); None without any."""
    import numpy

    package = Path(numpy.__file__).resolve().parent
    homes = (package, package.parent / "numpy.libs")
    for pool in pools:
        path = Path(str(pool.get("filepath") or "")).resolve()
        if any(path.is_relative_to(home) for home in homes):
            return pool
    return pools[0] if pools else None


def git_commit(path: Path | None = None) -> str | None:
    path = path or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def collect() -> dict:
    """Machine and software facts for env.json (no framework is imported)."""
    return {
        "python": sys.version.split()[0],
        "machine": {
            "cpu": cpu_model(),
            "cores": cores(),
            "memory_gib": memory_gib(),
            "platform": platform.platform(),
        },
        "versions": {name: _version(name) for name in (*PACKAGES, "mlp-bench")},
        "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "blas": blas(),
        "git_commit": git_commit(),
    }


def host() -> str:
    import socket

    return socket.gethostname()


def _machine_busy_s() -> float | None:
    """CPU seconds every process on the machine has spent busy since boot (Linux's
    /proc/stat: user, nice, system, irq, softirq and steal time); None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        if fields[0] != "cpu":
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _own_cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended (workers, probes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def load_snapshot() -> dict:
    """The machine's load now: {"loadavg": [1m, 5m, 15m] or None, "cpu_count": n}, plus the
    private counters `other_cpu_s` needs (removed before env.json is written)."""
    try:
        loadavg = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        loadavg = None
    return {
        "loadavg": loadavg,
        "cpu_count": cores(),
        "_busy_s": _machine_busy_s(),
        "_own_s": _own_cpu_s(),
    }


def public(snapshot: dict) -> dict:
    return {k: v for k, v in snapshot.items() if not k.startswith("_")}


def other_cpu_s(start: dict, end: dict) -> float | None:
    """CPU seconds other processes took between two snapshots: the machine's busy time minus
    this process tree's; None where the platform does not say."""
    if start.get("_busy_s") is None or end.get("_busy_s") is None:
        return None
    machine = end["_busy_s"] - start["_busy_s"]
    own = end["_own_s"] - start["_own_s"]
    return round(max(0.0, machine - own), 2)
