"""Processes and files of a run: how workers start and end, what a run leaves behind, what
an interrupted or resumed run says, and the checks made before anything runs."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import bench_command, bench_env, read_env, read_rows

from bench.run import session
from bench.sweep.build import build_sweep, expand
from bench.worker import measure

SMALL = ["--datasets", "digits", "--losses", "cce", "--threads", "1", "--quiet"]


def _pids_writing_to(path: Path) -> list[int]:
    found = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                found.append(int(fd_dir.parent.name))
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- the Python API from a script without a __main__ guard, a pipe, and a notebook cell ----

SNIPPET = """\
import bench
df = bench.run_sweep(backends=["numpy-vec"], epochs=2, batch_sizes=[128], losses=["cce"],
                     threads=[1], out={out!r})
results, curves = bench.load_run(df.attrs["run_dir"])
print("statuses", list(results["status"]))
"""


@pytest.mark.parametrize("how", ["script", "stdin", "notebook"])
def test_python_api_snippet_runs_as_written(tmp_path, how):
    """Before: workers started with multiprocessing's spawn re-imported a script without a
    __main__ guard: hundreds of lines of tracebacks, junk run folders, every cell an error."""
    out = tmp_path / "out"
    code = SNIPPET.format(out=str(out))
    script = tmp_path / "snippet.py"
    script.write_text(code)
    if how == "script":
        cmd, stdin = [sys.executable, str(script)], None
    elif how == "stdin":
        cmd, stdin = [sys.executable, "-"], code
    else:  # a notebook runs cells with exec in a __main__ that has no file
        cmd = [
            sys.executable,
            "-c",
            f"exec(compile(open({str(script)!r}).read(), '<cell>', 'exec'))",
        ]
        stdin = None
    done = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, cwd=tmp_path, env=bench_env(), timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "statuses ['ok']" in done.stdout
    assert len(list(out.iterdir())) == 1  # one run folder, no junk ones


# -- workers die with their parent; nothing is left in $TMPDIR ------------------------------

LONG = """
[sweep]
title = "long"
datasets = ["digits"]
threads = [1]
losses = ["cce"]
backends = ["numpy-loop"]
batch_sizes = [1]
epochs = [2]
hidden = ["3000x3000"]
"""


def test_worker_dies_within_a_second_of_its_parent_and_tmp_stays_clean(tmp_path):
    """Before: a SIGKILLed `bench run` left its worker training for as long as the epoch
    took (40+ s), and $TMPDIR/mlp-bench-data-* behind."""
    config = tmp_path / "long.toml"
    config.write_text(LONG)  # 1437 per-sample steps through 3000x3000: seconds per epoch
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = tmp_path / "out"
    cmd, kw = bench_command(
        "run", "--config", str(config), "--quiet", "--out", str(out), env={"TMPDIR": str(tmpdir)}
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    try:
        worker = None
        deadline = time.monotonic() + 90
        while worker is None and time.monotonic() < deadline:
            time.sleep(0.1)
            for log in out.glob("*-long/logs/worker-numpy-loop-t1.log"):
                pids = [p for p in _pids_writing_to(log) if p != proc.pid]
                worker = pids[0] if pids else None
        assert worker is not None, "the worker did not start"
        deadline = time.monotonic() + 60
        while not list(out.glob("*-long/curves.csv")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # inside the first long epoch
        assert _alive(worker)
        run_dir = next(out.glob("*-long"))
        assert read_rows(run_dir) == []  # still inside the cell
        proc.kill()
        proc.wait(10)
        killed = time.monotonic()
        while _alive(worker) and time.monotonic() - killed < 5:
            time.sleep(0.05)
        assert not _alive(worker), "the worker outlived its parent"
        assert time.monotonic() - killed < 1.5
    finally:
        proc.kill()
    assert list(tmpdir.iterdir()) == []  # the prepared data lived in the run folder
    # the folder is resumable: env.json was written before anything else
    env = read_env(run_dir)
    assert env["status"] == "running" and env["sessions"][0]["pid"] == proc.pid


def test_the_watchdog_ends_a_worker_without_the_parent_death_signal(tmp_path):
    """Where Linux's parent-death signal is not available, the watchdog thread notices,
    even while the worker's main thread is busy computing."""
    child = (
        "import os, sys; sys.platform = 'other'\n"
        "from bench.worker.process import _die_with_parent\n"
        "_die_with_parent(os.getppid()); print('ready', flush=True)\n"
        "while True: sum(range(1000))"
    )
    parent = (
        "import subprocess, sys, time; "
        f"c = subprocess.Popen([sys.executable, '-c', {child!r}], "
        "stdout=subprocess.PIPE, text=True); "
        "c.stdout.readline(); print(c.pid, flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, env=bench_env()
    )
    try:
        worker = int(proc.stdout.readline())
        assert _alive(worker)
        proc.kill()
        proc.wait(10)
        killed = time.monotonic()
        while _alive(worker) and time.monotonic() - killed < 5:
            time.sleep(0.02)
        assert not _alive(worker) and time.monotonic() - killed < 1.5
    finally:
        proc.kill()


def test_a_kill_while_preparing_data_leaves_a_resumable_folder(tmp_path):
    """Before: SIGKILL during data preparation left a folder without env.json that
    --resume refused."""
    out = tmp_path / "out"
    code = f"""
import os, signal, sys
from bench.run import runner
def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
runner.prepare_data = killed
from bench.cli import main
main(["run", "--backends", "numpy-vec", "--epochs", "1", "--batch-sizes", "256",
      *{SMALL!r}, "--out", {str(out)!r}])
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=bench_env(), timeout=120
    )
    assert done.returncode == -signal.SIGKILL
    (run_dir,) = out.iterdir()
    assert read_env(run_dir)["sweep"]  # the sweep is there to resume
    cmd, kw = bench_command("run", "--resume", str(run_dir), "--quiet")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in read_rows(run_dir)] == ["ok"]
    assert not (run_dir / ".data-tmp").exists()
    first, second = read_env(run_dir)["sessions"]
    assert first["status"] == "interrupted" and "killed" in first["note"]
    assert second["status"] == "complete" and "--resume" in second["command"]


# -- interrupted and resumed runs ----------------------------------------------------------


def test_double_interrupt_then_resume_keeps_every_session(tmp_path):
    """Before: a second Ctrl-C left env.json "running"; the interrupted run's message said
    nothing of the cells not run; --resume re-probed the matmul peak over the first one and
    the summary showed the resume command instead of the original."""
    out = tmp_path / "out"
    args = [
        "run",
        *SMALL,
        "--backends",
        "numpy-vec",
        "--batch-sizes",
        "64,128,256",
        "--epochs",
        "3",
        "--lrs",
        "0.1,0.05,0.02,0.01",
        "--out",
        str(out),
    ]
    cmd, kw = bench_command(*args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    try:
        deadline = time.monotonic() + 90
        run_dir = None
        while run_dir is None and time.monotonic() < deadline:
            time.sleep(0.02)
            for folder in out.glob("*-sweep"):
                if (folder / "results.csv").exists() and len(read_rows(folder)) >= 1:
                    run_dir = folder
        assert run_dir is not None
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    env = read_env(run_dir)
    assert env["status"] == "interrupted"
    done_first = len(read_rows(run_dir))
    assert done_first < 12
    assert f"{12 - done_first} of 12 cells did not run" in err
    assert env["cells_not_run"] == 12 - done_first
    assert env["sessions"][0]["cells_not_run"] == 12 - done_first
    assert (run_dir / "summary.md").is_file(), err  # the report of the cells that ran
    first_probe = env["sessions"][0]["matmul"]["1"]["float32"]
    assert (
        len(first_probe["reps"]) >= 5 and first_probe["median"] == env["matmul_gflops"]["float32"]
    )

    cmd, kw = bench_command("run", "--resume", str(run_dir), "--quiet")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 0, done.stderr
    env = read_env(run_dir)
    assert env["status"] == "complete" and env["cells_not_run"] == 0
    assert [s["index"] for s in env["sessions"]] == [0, 1]
    assert "--resume" not in env["command"] and "--lrs" in env["command"]
    assert "--resume" in env["sessions"][1]["command"]
    assert env["sessions"][0]["matmul"]["1"]["float32"] == first_probe  # kept, not replaced
    assert env["matmul_gflops"]["float32"] == first_probe["median"]
    assert env["sessions"][1]["matmul"]["1"]["float32"]["reps"] != first_probe["reps"]
    rows = read_rows(run_dir)
    assert len(rows) == 12
    assert {r["host"] for r in rows} == {socket.gethostname()}
    assert all(float(r["peak_host_mb"]) > 10 for r in rows)  # NumPy alone is more
    assert {r["session"] for r in rows} == {"0", "1"}
    # each row's roofline uses its own session's probe
    for r in rows:
        probe = env["sessions"][int(r["session"])]["matmul"]["1"]["float32"]["median"]
        assert float(r["roofline"]) == pytest.approx(float(r["gflops"]) / probe)
    for s in env["sessions"]:
        assert s["status"] in ("interrupted", "complete") and s["load"]["start"]["cpu_count"]
        assert s["load"]["busy"] in (True, False)


def test_interrupt_during_the_report_keeps_summary_and_says_how_to_finish(
    tmp_path, monkeypatch, capsys
):
    """Before: a SIGTERM while plots were drawn was ignored (the plotting went on)."""
    from bench.run import runner

    real = runner._render

    def render_then_term(run_dir, note=None, plots=None):
        if plots is False:  # summary.md alone: written whole before an interrupt is taken
            return real(run_dir, note, plots=False)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the figures are drawn
        time.sleep(5)  # the handler interrupts this
        real(run_dir, note, plots=plots)

    monkeypatch.delenv("MLP_BENCH_NO_PLOTS", raising=False)
    monkeypatch.setattr(runner, "_render", render_then_term)
    sweep = build_sweep(
        {
            "datasets": ["digits"],
            "backends": ["numpy-vec"],
            "losses": ["cce"],
            "epochs": [1],
            "batch_sizes": [256],
            "threads": [1],
        }
    )
    run_dir, status = runner.execute(sweep, out=tmp_path, progress=False, note=lambda t: None)
    err = capsys.readouterr().err
    assert status == "interrupted"
    assert f"python -m bench report {run_dir}" in err and "summary.md is written" in err
    assert (run_dir / "summary.md").read_text().startswith("# mlp-bench")
    assert not list((run_dir / "plots").glob("*.png"))  # the figures were stopped
    assert read_env(run_dir)["status"] == "complete"  # every cell ran: nothing to resume
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone


# -- checks before anything runs -----------------------------------------------------------


def test_an_unavailable_device_is_a_usage_error_before_anything_runs(tmp_path):
    """Before: --device cuda without CUDA ran, every torch cell errored, exit 0, and the
    numpy rows said device cuda. Now the devices are an axis: each backend runs on those it
    supports, and a device that is not there stops the run before anything runs."""
    sweep = build_sweep({"backends": ["torch", "numpy-vec"], "devices": ["cpu", "cuda"]})
    cells = expand(sweep)
    assert sorted({(c.backend, c.device) for c in cells}) == [
        ("numpy-vec", "cpu"),
        ("torch", "cpu"),
        ("torch", "cuda:0"),
    ]
    none = {"torch": {"library": "torch", "version": "2.x", "count": 0}, "cupy": {}}
    with pytest.raises(session.UsageError, match=r"--devices cuda:0: this machine has no CUDA"):
        session.check_devices(cells, probe=lambda: none)
    one = {"torch": {"version": "2.x", "count": 1, "devices": [{"device": "cuda:0", "name": "G"}]}}
    assert session.check_devices(cells, probe=lambda: one) == one
    cells_1 = expand(build_sweep({"backends": ["torch"], "devices": ["cuda:1"]}))
    with pytest.raises(session.UsageError, match=r"cuda:1: this machine has 1 CUDA device.*G"):
        session.check_devices(cells_1, probe=lambda: one)
    cpu_cells = expand(build_sweep({"backends": ["numpy-vec", "torch"]}))
    assert session.check_devices(cpu_cells, probe=lambda: pytest.fail("no GPU cell")) is None


def test_device_cuda_without_cuda_is_a_usage_error(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "out"
    args = [*SMALL, "--epochs", "1", "--batch-sizes", "256", "--out", str(out)]
    cmd, kw = bench_command("run", *args, "--backends", "numpy-vec,torch", "--devices", "cpu,cuda")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: --devices cuda:0: this machine has no CUDA device")
    assert "Traceback" not in done.stderr and not out.exists()


def test_a_run_with_odd_settings_on_an_odd_machine(tmp_path):
    """More threads than cores: before, --threads 999 ran 64 threads, 30x slower, without a
    word. An unwritable HOME: before, matplotlib warned that its config folder was not
    writable (and Keras wrote /tmp/.keras)."""
    from bench.worker import envinfo

    too_many = envinfo.cores() + 1
    blocker = tmp_path / "file"
    blocker.write_text("")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = tmp_path / "out"
    env = {"HOME": str(blocker / "home"), "TMPDIR": str(tmpdir), "MLP_BENCH_NO_PLOTS": ""}
    for key in ("XDG_CACHE_HOME", "MPLCONFIGDIR", "KERAS_HOME", "XDG_CONFIG_HOME"):
        env[key] = ""
    args = ["--datasets", "digits", "--losses", "cce", "--backends", "numpy-vec"]
    args += ["--epochs", "1", "--batch-sizes", "256", "--threads", str(too_many)]
    cmd, kw = bench_command("run", *args, "--out", str(out), env=env)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 0, done.stderr
    assert f"warning: --threads {too_many} is more than the {envinfo.cores()} cores" in done.stderr
    assert "Matplotlib" not in done.stderr and "writable" not in done.stderr
    assert list(tmpdir.iterdir()) == []
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    assert (run_dir / ".cache" / "matplotlib").is_dir() and list((run_dir / "plots").iterdir())
    env = read_env(run_dir)
    assert f"--threads {too_many}" in env["sessions"][0]["warnings"][0]
    assert [r["device"] for r in read_rows(run_dir)] == ["cpu"]


def test_tool_homes_are_set_for_the_run_and_restored(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("MPLCONFIGDIR", "/mine")
    with session.tool_homes(tmp_path):
        assert Path(os.environ["KERAS_HOME"]).is_dir()
        assert os.environ["MPLCONFIGDIR"] == "/mine"  # the user's own setting stands
    assert "KERAS_HOME" not in os.environ and os.environ["MPLCONFIGDIR"] == "/mine"


# -- workers' start-up errors ------------------------------------------------------------------


def test_a_worker_that_cannot_start_names_a_log_that_exists(tmp_path, monkeypatch):
    """Before: "worker did not start ... (see .../worker-x.log)" with no such file."""
    from bench.worker import process as worker_module

    monkeypatch.setattr(
        worker_module,
        "_command",
        lambda *a: [sys.executable, "-c", "import sys; print('boom: cannot start'); sys.exit(3)"],
    )
    log = tmp_path / "w.log"
    w = worker_module.Worker("numpy-vec", 1, str(log))
    with pytest.raises(worker_module.WorkerDied, match="status 3: boom: cannot start"):
        w.wait_ready(measure.Deadline(30))
    w.kill()
    w = worker_module.Worker("numpy-vec", 1, None)
    with pytest.raises(worker_module.WorkerDied, match="exited with status 3$"):
        w.wait_ready(measure.Deadline(30))
    w.kill()
