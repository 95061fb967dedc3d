"""GPUs: which CUDA devices a machine has, and each cell's peak device memory.

The parent process never imports a framework, so `cuda_devices` asks in a short process of
its own (`python -m bench.worker.devices`), through torch where it is installed, else CuPy. What it
finds goes into env.json's `devices` and decides before anything runs whether the cells' devices
exist. `reset_peak` and `peak_mb` run inside a worker, around one cell, and ask the libraries the
worker has already loaded (none is imported here).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from impls.spec import device_index

PROBE_TIMEOUT_S = 300.0  # importing torch or CuPy and starting CUDA, on a cold machine


def _torch_view() -> dict:
    import torch

    view = {"library": "torch", "version": torch.__version__, "cuda": torch.version.cuda}
    if not torch.cuda.is_available():
        return {**view, "available": False, "count": 0, "devices": []}
    devices = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        devices.append(
            {
                "device": f"cuda:{i}",
                "name": p.name,
                "memory_mb": round(p.total_memory / 2**20),
                "capability": f"{p.major}.{p.minor}",
                "multiprocessors": p.multi_processor_count,
            }
        )
    view.update(available=True, count=len(devices), devices=devices)
    view["cudnn"] = torch.backends.cudnn.version()
    # the precision switches in effect by default; each cell sets its own (its tf32 column)
    view["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    return view


def _cupy_view() -> dict:
    import cupy

    runtime = cupy.cuda.runtime
    view = {"library": "cupy", "version": cupy.__version__}
    try:
        count = runtime.getDeviceCount()
        view["driver"] = _cuda_version(runtime.driverGetVersion())
        view["runtime"] = _cuda_version(runtime.runtimeGetVersion())
    except Exception as exc:  # CUDARuntimeError: no driver, no device
        return {**view, "available": False, "count": 0, "devices": [], "error": str(exc)}
    devices = []
    for i in range(count):
        p = runtime.getDeviceProperties(i)
        name = p["name"].decode() if isinstance(p["name"], bytes) else str(p["name"])
        devices.append(
            {
                "device": f"cuda:{i}",
                "name": name,
                "memory_mb": round(p["totalGlobalMem"] / 2**20),
                "capability": f"{p['major']}.{p['minor']}",
            }
        )
    view.update(available=count > 0, count=count, devices=devices)
    view["CUPY_TF32"] = os.environ.get("CUPY_TF32", "0")  # the cupy backend sets its own
    return view


def _cuda_version(number: int) -> str:
    return f"{number // 1000}.{number % 1000 // 10}"


def _report() -> dict:
    """What each installed GPU library sees here (run in the probe process)."""
    import importlib.util

    found = {}
    for name, view in (("torch", _torch_view), ("cupy", _cupy_view)):
        if importlib.util.find_spec(name) is None:
            found[name] = {"library": name, "installed": False}
            continue
        try:
            found[name] = view()
        except Exception as exc:  # a broken install: say so, do not stop the run
            found[name] = {"library": name, "available": False, "error": repr(exc)}
    found["nvidia_smi"] = _nvidia_smi()
    return found


def _nvidia_smi() -> dict | None:
    """The driver's own account (driver version, names, memory), if nvidia-smi is there."""
    query = "name,driver_version,memory.total"
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    rows = [[f.strip() for f in line.split(",")] for line in done.stdout.strip().splitlines()]
    return {"gpus": [dict(zip(query.split(","), row)) for row in rows]}


def cuda_devices() -> dict:
    """`_report()` from a process of its own: {"torch": {...}, "cupy": {...}, "nvidia_smi": ...}.
    A probe that fails is recorded as such ({"error": ...})."""
    root = str(Path(__file__).resolve().parents[2])  # holds bench/ and impls/
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.worker.devices"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env=env,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"error": f"the device probe failed: {exc!r}"}


def device_count(found: dict) -> int:
    """CUDA devices the libraries found (the largest count any of them reports)."""
    return max(
        (v.get("count", 0) for v in found.values() if isinstance(v, dict) and "count" in v),
        default=0,
    )


def describe(found: dict) -> str:
    """One line of what was found, for error messages: 'torch 2.13.0+cpu: no CUDA device; ...'."""
    parts = []
    for name in ("torch", "cupy"):
        view = found.get(name) or {}
        if view.get("installed") is False:
            parts.append(f"{name} is not installed")
        elif view.get("count"):
            names = ", ".join(f"{d['device']} {d['name']}" for d in view.get("devices", []))
            parts.append(f"{name} {view.get('version', '')}: {names}")
        else:
            why = view.get("error") or "no CUDA device"
            parts.append(f"{name} {view.get('version', '')}: {why}")
    if "error" in found:
        parts.append(found["error"])
    return "; ".join(parts)


# -- in a worker, around one cell ---------------------------------------------------------


def reset_peak(device: str) -> None:
    """Start counting a cell's peak device memory: torch's allocator statistics are reset and
    CuPy's pool is emptied, for the libraries this worker has loaded."""
    if device == "cpu":
        return
    index = device_index(device)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats(index)
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        with cupy.cuda.Device(index):  # the pool of that device
            cupy.get_default_memory_pool().free_all_blocks()


def peak_mb(device: str) -> float:
    """The cell's peak device memory in MB, summed over the libraries this worker loaded, as
    each library's allocator holds it from the device: torch's peak reserved memory since
    `reset_peak` (its caching allocator's blocks, in use or cached); CuPy's pool at the end of
    the cell, which is its largest (the pool keeps every block it has allocated until it is
    emptied, and nothing empties it during a cell). NaN on the CPU, or where no such library is
    loaded (JAX keeps a peak since its start only, which is not this cell's)."""
    if device == "cpu":
        return math.nan
    index = device_index(device)
    total, known = 0, False
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        total += torch.cuda.max_memory_reserved(index)
        known = True
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        with cupy.cuda.Device(index):
            total += cupy.get_default_memory_pool().total_bytes()
        known = True
    return total / 2**20 if known else math.nan


if __name__ == "__main__":
    print(json.dumps(_report()))
