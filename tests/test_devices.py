"""Devices: the devices axis of a sweep, what the GPU libraries see (bench.worker.devices), each
device's own matmul rate as its cells' roofline, and peak device memory. The parts that need
a GPU are skipped here with the reason; scripts/gpu-check runs them on one."""

import json
import math
import subprocess
import sys
from types import SimpleNamespace

import pytest

from bench.errors import UsageError
from bench.run import session
from bench.store.folder import RunStore
from bench.sweep.build import build_sweep, default_backends, expand
from bench.sweep.values import parse_device
from bench.worker import devices
from bench.worker.process import process_env
from impls import available_backends


def _cuda_count() -> int:
    return devices.device_count(devices.cuda_devices())


def test_device_names_are_normalised():
    assert parse_device("cpu") == "cpu"
    assert parse_device("cuda") == "cuda:0"
    assert parse_device("CUDA:2") == "cuda:2"
    for bad in ("gpu", "cuda:", "cuda:x", "cuda:-1", 0, "cuda:١"):
        with pytest.raises(ValueError, match="unknown device"):
            parse_device(bad)


def test_each_backend_runs_on_the_devices_it_supports():
    sweep = build_sweep(
        {"backends": ["numpy-vec", "torch", "cupy", "jax"], "devices": ["cpu", "cuda"]}
    )
    pairs = sorted({(c.backend, c.device) for c in expand(sweep)})
    assert pairs == [
        ("cupy", "cuda:0"),
        ("jax", "cpu"),
        ("jax", "cuda:0"),
        ("numpy-vec", "cpu"),
        ("torch", "cpu"),
        ("torch", "cuda:0"),
    ]
    with pytest.raises(UsageError, match=r"backend 'numpy-vec' runs on cpu only.*add cpu"):
        build_sweep({"backends": ["numpy-vec", "torch"], "devices": ["cuda"]})
    with pytest.raises(UsageError, match=r"backend 'cupy' runs on cuda only"):
        build_sweep({"backends": ["cupy"]})


def test_tf32_is_on_only_where_it_applies():
    sweep = build_sweep(
        {
            "backends": ["torch"],
            "devices": ["cpu", "cuda"],
            "dtypes": ["float32", "float64"],
            "tf32": True,
        }
    )
    on = {(c.device, c.dtype): c.tf32 for c in expand(sweep)}
    assert on == {
        ("cpu", "float32"): False,
        ("cpu", "float64"): False,
        ("cuda:0", "float32"): True,
        ("cuda:0", "float64"): False,
    }
    plain = expand(build_sweep({"backends": ["torch"], "devices": ["cuda"]}))
    tf32 = expand(build_sweep({"backends": ["torch"], "devices": ["cuda"], "tf32": "on"}))
    assert plain[0].cell_id != tf32[0].cell_id  # a different computation, another cell
    assert plain[0].spec(4, 2).tf32 is False and tf32[0].spec(4, 2).tf32 is True


def test_default_backends_follow_the_devices():
    status = available_backends()
    on_gpu = default_backends(("cuda:0",))
    assert all(name in ("torch", "cupy") for name in on_gpu)
    if status["torch"] is None:
        assert "torch" in on_gpu
    assert ("cupy" in on_gpu) == (status["cupy"] is None)
    assert "cupy" not in default_backends(("cpu",))


def test_an_old_folder_with_one_device_setting_still_reads():
    """env.json of earlier versions stored `device` per part; it reads as the devices axis,
    and a CPU cell without TF32 keeps the id it had then."""
    sweep = build_sweep({"parts": [{"backends": ["numpy-vec"], "device": "cpu"}]})
    assert sweep.parts[0].devices == ("cpu",)
    cell = expand(sweep)[0]
    assert cell.device == "cpu" and cell.tf32 is False


def test_the_roofline_of_a_cell_uses_its_own_device_rate(tmp_path):
    store = RunStore.create(tmp_path, "x")
    this = session.Session("test", [])
    this.start(store, status="running")
    cpu = {1: {"float32": {"median": 100.0}}}
    gpu = {"cuda:0": {"float32": {"median": 50000.0}, "float32+tf32": {"median": 400000.0}}}
    this.record_matmul(store, cpu, gpu)
    assert store.read_env()["sessions"][0]["device_matmul"] == gpu
    store.close()

    def cell(device, tf32=False, threads=1):
        return SimpleNamespace(device=device, dtype="float32", tf32=tf32, threads=threads)

    assert this.peak_for(cell("cpu")) == 100.0
    assert this.peak_for(cell("cuda:0")) == 50000.0
    assert this.peak_for(cell("cuda:0", tf32=True)) == 400000.0
    assert this.peak_for(cell("cuda:1")) is None  # never the host's rate for a GPU cell


def test_what_the_gpu_libraries_see_is_asked_in_a_process_of_its_own():
    found = devices.cuda_devices()
    assert "torch" in found and "cupy" in found
    for view in (found["torch"], found["cupy"]):
        assert view.get("installed") is False or "count" in view or "error" in view
    line = devices.describe(found)
    assert "torch" in line and "cupy" in line


def test_describe_and_count_name_what_was_found():
    found = {
        "torch": {"version": "2.x", "count": 0},
        "cupy": {"installed": False},
    }
    assert devices.device_count(found) == 0
    assert devices.describe(found) == "torch 2.x: no CUDA device; cupy is not installed"
    two = {"cupy": {"version": "14", "count": 2, "devices": [{"device": "cuda:0", "name": "A"}]}}
    assert devices.device_count(two) == 2 and "cuda:0 A" in devices.describe(two)


def test_peak_device_memory_is_not_known_on_the_cpu():
    assert math.isnan(devices.peak_mb("cpu"))
    devices.reset_peak("cpu")  # nothing to reset


def test_workers_get_what_their_framework_reads_at_import():
    def cell(backend, tf32=False):
        return SimpleNamespace(backend=backend, tf32=tf32)

    assert process_env(cell("cupy")) == (("CUPY_TF32", "0"),)
    assert process_env(cell("cupy", tf32=True)) == (("CUPY_TF32", "1"),)
    assert process_env(cell("jax")) == (("XLA_PYTHON_CLIENT_PREALLOCATE", "false"),)
    assert process_env(cell("torch", tf32=True)) == ()  # torch switches per model
    for cpu_only in ("keras", "keras-jax", "keras-torch", "numpy-vec", "sklearn"):
        assert process_env(cell(cpu_only)) == (("CUDA_VISIBLE_DEVICES", ""),)


def test_bench_devices_prints_json():
    done = subprocess.run(
        [sys.executable, "-m", "bench.worker.devices"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) >= {"torch", "cupy", "nvidia_smi"}


# -- on a GPU (scripts/gpu-check runs these; skipped here with the reason) ------------------


@pytest.fixture(scope="module")
def cuda():
    if _cuda_count() == 0:
        pytest.skip(f"no CUDA device here ({devices.describe(devices.cuda_devices())})")


def test_cuda_run_records_device_roofline_and_memory(cuda, tmp_path):
    """torch and cupy on cuda:0 beside numpy-vec on the CPU: every row says where it ran, GPU
    rows have a roofline against the GPU's own rate (at most 1) and a peak device memory."""
    import pandas as pd

    backends = [b for b in ("numpy-vec", "torch", "cupy") if available_backends()[b] is None]
    args = ["--datasets", "synthetic:n=4096,d=784,k=10", "--losses", "cce", "--epochs", "4"]
    args += ["--hidden", "256x128", "--batch-sizes", "256", "--backends", ",".join(backends)]
    args += ["--devices", "cpu,cuda", "--out", str(tmp_path), "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    run_dir = done.stdout.strip().splitlines()[-1]
    rows = pd.read_csv(f"{run_dir}/results.csv")
    assert (rows["status"] == "ok").all(), rows[["backend", "error"]]
    on_gpu = rows[rows["device"] == "cuda:0"]
    assert set(on_gpu["backend"]) == set(backends) - {"numpy-vec"}
    assert (on_gpu["roofline"] <= 1.0).all() and (on_gpu["peak_device_mb"] > 0).all()
    assert rows[rows["device"] == "cpu"]["peak_device_mb"].isna().all()
    assert rows["stage_s"].notna().all()
    env = json.loads(open(f"{run_dir}/env.json").read())
    assert devices.device_count(env["devices"]) >= 1
    assert "cuda:0" in env["sessions"][0]["device_matmul"]


def test_cuda_matmul_probe_is_the_devices_own_rate(cuda):
    from bench.worker import probes

    probe = probes.device_matmul_probe("float32", "cuda:0", repeats=3, n=2048)
    assert probe["median"] > 1000  # GFLOP/s: any CUDA GPU of this decade, far above a CPU core
    assert probe["tf32"] is False and probe["library"]


def test_the_summary_names_the_gpus_and_their_own_rates():
    from bench.report.header import gpu_sentence

    env = {
        "devices": {
            "torch": {
                "count": 1,
                "devices": [{"device": "cuda:0", "name": "NVIDIA H200", "memory_mb": 143771}],
            }
        },
        "sessions": [{"device_matmul": {"cuda:0": {"float32": {"median": 51234.0}}}}],
    }
    assert gpu_sentence(env) == (
        "GPUs: cuda:0: NVIDIA H200, 140 GiB, matmul peak 51.2 TFLOP/s float32 (each GPU "
        "cell's roofline uses its own device's rate)."
    )
    assert gpu_sentence({}) == ""


def test_tf32_without_a_gpu_cell_is_warned_about_and_device_twice_is_an_error():
    from bench.run.runner import tf32_warnings

    sweep = build_sweep({"backends": ["torch"], "tf32": True})
    assert "this sweep has none" in tf32_warnings(sweep, expand(sweep))[0]
    gpu = build_sweep({"backends": ["torch"], "devices": ["cuda"], "tf32": True})
    assert tf32_warnings(gpu, expand(gpu)) == []
    with pytest.raises(UsageError, match="device and devices are one setting"):
        build_sweep({"backends": ["torch"], "device": "cpu", "devices": ["cpu"]})
