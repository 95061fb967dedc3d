"""Bad input and faults: a clear error for every mistake, nothing lost for every fault.

Usage errors exit with status 2 and one `error:` line (a traceback only with --debug). Faults
during a sweep are recorded per cell (skipped, error, diverged, timeout) and the sweep goes on;
an interrupted run keeps every finished cell and `--resume` finishes it. Sweeps here are tiny
(digits, NumPy backends, 1-2 epochs) and nothing touches the network.
"""

import gzip
import importlib.util
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import bench_command, read_curves, read_env, read_rows, run_bench

from bench import datasets as dsm
from bench.cli import main

TINY = [
    "--datasets",
    "digits",
    "--backends",
    "numpy-vec",
    "--losses",
    "cce",
    "--epochs",
    "1",
    "--batch-sizes",
    "256",
    "--threads",
    "1",
]


def _cli(args, capsys):
    """Run `python -m bench ARGS` in this process: (exit status, stdout, stderr)."""
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error_line(err: str) -> str:
    """The stderr of a usage error: exactly one line, `error: ...`, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# usage errors: names, numbers, config files, combinations


@pytest.mark.parametrize(
    "flag,given,closest",
    [
        ("--backends", "numpy-vex", "numpy-vec"),
        ("--datasets", "digitz", "digits"),
        ("--losses", "cee", "cce"),
        ("--optimizers", "adamw", "adam"),
        ("--activations", "tanhh", "tanh"),
        ("--output", "softmx", "softmax"),
        ("--dtypes", "flaot32", "float32"),
        ("--preset", "seed01", None),
    ],
)
def test_unknown_name_lists_valid_and_suggests(tmp_path, capsys, flag, given, closest):
    out = tmp_path / "out"
    code, _, err = _cli(["run", flag, given, "--out", str(out)], capsys)
    assert code == 2
    line = _error_line(err)
    assert f"'{given}'" in line and "valid: " in line and "did you mean" in line
    if closest:
        assert f"did you mean '{closest}'?" in line
    assert not out.exists()  # nothing was created, nothing ran


@pytest.mark.parametrize(
    "args,message",
    [
        (["--batch-sizes", "0"], "batch size must be a positive integer, got '0'"),
        (["--batch-sizes", "-4"], "batch size must be a positive integer, got '-4'"),
        (["--lr", "0"], "lr must be a finite number > 0, got 0.0"),
        (["--lr", "-0.1"], "lr must be a finite number > 0, got -0.1"),
        (["--lr", "nan"], "lr must be a finite number > 0, got nan"),
        (["--lr", "inf"], "lr must be a finite number > 0, got inf"),
        (["--epochs", "0"], "epochs must be a positive integer, got '0'"),
        (["--repeats", "0"], "repeats must be a positive integer, got '0'"),
        (["--threads", "0"], "threads must be a positive integer, got '0'"),
        (["--hidden", "0"], "hidden layers are written as positive widths"),
        (["--hidden", "12xabc"], "got '12xabc'"),
        (["--backends="], "--backends: the list is empty"),
        (["--batch-sizes", "32,,64"], "--batch-sizes: empty item in the list '32,,64'"),
    ],
)
def test_malformed_numbers_are_usage_errors(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code, _, err = _cli(["run", *args, "--out", str(out)], capsys)
    assert code == 2
    assert message in _error_line(err)
    assert not out.exists()


def test_traceback_only_with_debug(tmp_path, capsys):
    args = ["run", "--epochs", "0", "--out", str(tmp_path / "out")]
    code, _, err = _cli(args, capsys)
    assert code == 2 and "Traceback" not in err
    code, _, err = _cli(["--debug", *args], capsys)
    assert code == 2  # the same exit status, with the traceback
    assert "Traceback (most recent call last)" in err
    assert (
        err.strip().splitlines()[-1] == "error: epochs: epochs must be a positive integer, got '0'"
    )


@pytest.mark.parametrize(
    "text,message",
    [
        (None, "config file {path}: no such file"),
        ("[sweep]\nepochs = [1,\nlosses = 3\n", "{path} is not valid TOML: "),
        ("[sweep]\nbackend = ['numpy-vec']\n", "unknown key 'backend' (did you mean 'backends'?)"),
        (
            "[sweep]\nepochs = 'many'\n",
            "{path}: epochs: epochs must be a positive integer, got 'many'",
        ),
        ("[sweep]\nlrs = [true]\n", "{path}: lrs: lr must be a number, got True"),
        ("[sweep]\nbatch_sizes = [0.5]\n", "batch size must be a positive integer, got 0.5"),
        ("[sweep]\ntimeout = 'soon'\n", "{path}: timeout: timeout must be a number"),
        (
            "[sweeps]\nepochs = 1\n",
            "{path}: unknown table(s) sweeps; the settings go under [sweep]",
        ),
    ],
)
def test_config_file_errors(tmp_path, capsys, text, message):
    path = tmp_path / "sweep.toml"
    if text is not None:
        path.write_text(text)
    out = tmp_path / "out"
    code, _, err = _cli(["run", "--config", str(path), "--out", str(out)], capsys)
    assert code == 2
    line = _error_line(err)
    assert message.format(path=path) in line
    if text and "[1," in text:
        assert "line 3" in line  # where the TOML goes wrong
    assert not out.exists()


@pytest.mark.parametrize(
    "loss,output,needs", [("bce", "softmax", "sigmoid"), ("cce", "sigmoid", "softmax")]
)
def test_impossible_combination_before_anything_runs(tmp_path, capsys, loss, output, needs):
    out = tmp_path / "out"
    code, _, err = _cli(["run", "--losses", loss, "--output", output, "--out", str(out)], capsys)
    assert code == 2
    assert _error_line(err) == (
        f"error: loss '{loss}' cannot be used with output '{output}'; it needs output '{needs}'"
    )
    assert not out.exists()


def test_oversize_batch_runs_as_one_batch_with_one_note(tmp_path, capsys):
    args = [*TINY, "--backends", "numpy-vec,numpy-loop", "--batch-sizes", "2000,4096"]
    code, out, err = _cli(["run", *args, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    notes = [line for line in err.splitlines() if "larger than" in line]
    assert notes == [
        "note: batch sizes 2000, 4096 are larger than digits's 1437 training samples; "
        "those cells run one batch per epoch"
    ]
    rows = read_rows(out.strip().splitlines()[-1])
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert [(r["backend"], r["batch_size"]) for r in rows] == [
        ("numpy-vec", "2000"),
        ("numpy-loop", "2000"),
        ("numpy-vec", "4096"),
        ("numpy-loop", "4096"),
    ]
    # one batch per epoch: both batch sizes train the same on each backend
    assert rows[0]["test_acc"] == rows[2]["test_acc"] and rows[1]["test_acc"] == rows[3]["test_acc"]


# ---------------------------------------------------------------------------------------------
# a framework that cannot be imported


@pytest.mark.parametrize(
    "backend, torch_init, env, reason",
    [
        (
            "torch",
            'raise ImportError("libtorch_cpu.so: cannot open shared object file")',
            {},
            "backend 'torch' failed to import its framework (ImportError: libtorch_cpu.so: "
            'cannot open shared object file); reinstall with pip install "mlp-bench[torch]"',
        ),
        (
            "torch",
            'raise RuntimeError("CUDA driver version is insufficient")',
            {},
            "backend 'torch' failed to import its framework (RuntimeError: CUDA driver "
            'version is insufficient); reinstall with pip install "mlp-bench[torch]"',
        ),
        (
            "keras",
            None,
            {"KERAS_BACKEND": "numpy"},
            "backend 'keras' is unavailable: KERAS_BACKEND='numpy' cannot train this model; "
            "use one of ",
        ),
    ],
    ids=["import-error", "error-on-import", "keras-on-numpy"],
)
def test_unusable_framework_cells_are_skipped(tmp_path, backend, torch_init, env, reason):
    """A framework that cannot be used: a torch whose import raises (a broken install), or
    Keras pointed at a backend it cannot train on. Its cells are skipped with the reason (and
    the install command), every other cell runs, and the sweep completes."""
    if torch_init is None and importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    if torch_init is not None:  # a torch package that raises on import, first on the path
        fake = tmp_path / "fake" / "torch"
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text(torch_init + "\n")
        env = {**env, "PYTHONPATH": str(tmp_path / "fake")}
    done = run_bench(
        "run",
        *TINY,
        "--backends",
        f"numpy-vec,{backend}",
        "--losses",
        "cce,mse",
        "--out",
        str(tmp_path / "out"),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    rows = read_rows(run_dir)
    assert [(r["backend"], r["status"]) for r in rows] == [
        ("numpy-vec", "ok"),
        (backend, "skipped"),
        ("numpy-vec", "ok"),
        (backend, "skipped"),
    ]
    assert rows[1]["error"].startswith(reason) and rows[3]["error"] == rows[1]["error"]
    assert "Traceback" not in done.stderr
    if torch_init is not None:  # the traceback is in the worker's log, which the reason names
        assert rows[1]["error"].endswith(" (traceback: worker-torch-t1.log)")
        log = (run_dir / "logs" / "worker-torch-t1.log").read_text()
        assert "Traceback" in log and torch_init.split("(")[0].split()[-1] in log
    assert read_env(run_dir)["status"] == "complete"


def test_missing_framework_is_unavailable_without_importing(monkeypatch):
    """A framework that is not installed at all is reported before thread pinning imports
    it (the worker turns this into skipped cells)."""
    from bench.worker.process import _start_backend
    from impls import registry

    hint = 'PyTorch is not installed: pip install "mlp-bench[torch]"'
    monkeypatch.setitem(registry._REQUIREMENTS, "torch", lambda: hint)
    with pytest.raises(registry.BackendUnavailable) as info:
        _start_backend("torch", 1, None)
    assert str(info.value) == f"backend 'torch' is unavailable: {hint}"


# ---------------------------------------------------------------------------------------------
# dataset files


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """Every place datasets are looked for is empty; the download source is a missing file."""
    for name in ("env", "cache", "empty"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("MLP_BENCH_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(dsm.locate, "SYSTEM_DATA_DIRS", {})
    missing = (tmp_path / "no-such-server").as_uri() + "/"
    monkeypatch.setattr(
        dsm.download,
        "DOWNLOAD_SOURCES",
        {"mnist": (dsm.DownloadSource(missing, (("mnist.npz", "0" * 64),)),)},
    )
    dsm.clear_cache()
    yield tmp_path
    dsm.clear_cache()


def _mnist_args(data_dir, out):
    return ["run", *TINY, "--datasets", "mnist", "--data-dir", str(data_dir), "--out", str(out)]


def test_missing_dataset_says_where_it_looked(no_data, capsys):
    out = no_data / "out"
    code, _, err = _cli(["run", *TINY, "--datasets", "mnist", "--out", str(out)], capsys)
    assert code == 1 and "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith("error: mnist: data files not found in ")
    for folder in ("env", "cache"):
        assert str(no_data / folder) in err
    assert "train-images-idx3-ubyte" in err and "mnist.npz" in err
    assert "To fix: put the files in a folder DIR and pass --data-dir DIR" in err
    assert out.is_dir() and not list(out.iterdir())  # no half-made run folder is left


def test_given_data_dir_without_the_dataset_names_what_is_missing(no_data, capsys):
    # The files are in $MLP_BENCH_DATA: an explicit --data-dir without them used to fall back
    # to it silently.
    _write_mnist(no_data / "env")
    given = no_data / "empty"
    _write_mnist(given)
    (given / "t10k-labels-idx1-ubyte.gz").unlink()
    code, _, err = _cli(_mnist_args(given, no_data / "out"), capsys)
    assert code == 1 and "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith(f"error: mnist: data files not found in the given data folder {given}")
    assert "missing t10k-labels-idx1-ubyte[.gz]" in first
    assert str(no_data / "env") not in err


def _idx(array, magic=None):
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def _write_mnist(folder: Path, labels_test=(0, 1, 2, 3)):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(6),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (4, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.array(labels_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        (folder / name).write_bytes(gzip.compress(_idx(array)))


@pytest.mark.parametrize(
    "fault,message",
    [
        ("truncated", "train-images-idx3-ubyte: IDX payload size mismatch (truncated)"),
        ("corrupt gzip", "t10k-images-idx3-ubyte.gz: corrupt gzip"),
        ("wrong shape", "shape (4, 27, 29)"),
        ("labels out of range", "2 labels in the test split outside [0, 10)"),
        ("nan", "non-finite feature values in the train split (1 NaN, 0 inf)"),
    ],
)
def test_bad_dataset_files_fail_before_training(no_data, capsys, fault, message):
    data = no_data / "data"
    if fault == "truncated":
        _write_mnist(data)
        path = data / "train-images-idx3-ubyte.gz"
        raw = gzip.decompress(path.read_bytes())
        path.unlink()
        (data / "train-images-idx3-ubyte").write_bytes(raw[:-10])
    elif fault == "corrupt gzip":
        _write_mnist(data)
        path = data / "t10k-images-idx3-ubyte.gz"
        path.write_bytes(path.read_bytes()[:40])
    elif fault == "wrong shape":
        _write_mnist(data)
        (data / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(np.zeros((4, 27, 29)))))
    elif fault == "labels out of range":
        _write_mnist(data, labels_test=(0, 1, 10, 12))
    else:  # nan: an npz of float images
        data.mkdir()
        x_train = np.random.default_rng(0).random((6, 28, 28))
        x_train[1, 2, 3] = np.nan
        np.savez(
            data / "mnist.npz",
            x_train=x_train,
            y_train=np.arange(6),
            x_test=np.zeros((4, 28, 28)),
            y_test=np.arange(4),
        )
    out = no_data / "out"
    code, _, err = _cli(_mnist_args(data, out), capsys)
    assert code == 1 and "Traceback" not in err
    assert err.startswith("error: ") and message in err
    if fault in ("truncated", "corrupt gzip", "wrong shape"):
        assert str(data) in err  # the file is named
    assert "matmul" not in err  # stopped before anything ran
    assert not list(out.iterdir())


# ---------------------------------------------------------------------------------------------
# faults during a sweep: divergence, an exception in a backend, a hang, a killed worker

FAULTS_TOML = """
[sweep]
title = "faults"
datasets = ["digits"]
threads = [1]
epochs = [2]
losses = ["cce"]
batch_sizes = [256]
timeout = 2

[[sweep.parts]]
name = "diverge"
backends = ["numpy-vec"]
losses = ["mse"]
output = "linear"
lrs = [1e6]
batch_sizes = [8]

[[sweep.parts]]
name = "raises"
backends = ["numpy-vec"]
init = "uniform"
init_scale = 1e300  # fine in float64, inf in float32: the model refuses its parameters

[[sweep.parts]]
name = "hangs"
backends = ["numpy-loop"]
batch_sizes = [1]
epochs = [1000]

[[sweep.parts]]
name = "after"
backends = ["numpy-loop", "numpy-vec"]
"""


def test_faults_are_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    config = tmp_path / "faults.toml"
    config.write_text(FAULTS_TOML)
    code, out, err = _cli(["run", "--config", str(config), "--out", str(tmp_path)], capsys)
    assert code == 0, err
    run_dir = Path(out.strip().splitlines()[-1])
    rows = {(r["part"], r["backend"]): r for r in read_rows(run_dir)}
    diverged = rows[("diverge", "numpy-vec")]
    assert diverged["status"] == "diverged" and diverged["diverged_epoch"] == "1"
    assert diverged["error"] == "loss became NaN or inf in epoch 1"
    raised = rows[("raises", "numpy-vec")]
    assert raised["status"] == "error"
    assert raised["error"].startswith("ValueError: layer 0: parameters hold NaN or inf")
    log = run_dir / "logs" / raised["error"].split("(traceback: ")[1].rstrip(")")
    assert log.parent.name == "logs" and "Traceback" in log.read_text()
    hung = rows[("hangs", "numpy-loop")]
    assert hung["status"] == "timeout" and hung["error"] == "stopped after 2 s (--timeout)"
    # a new numpy-loop worker took over after the hung one was killed
    assert rows[("after", "numpy-loop")]["status"] == "ok"
    assert rows[("after", "numpy-vec")]["status"] == "ok"
    assert "cells: 1 diverged, 1 error, 2 ok, 1 timeout" in err
    assert read_env(run_dir)["status"] == "complete"


def _pid_writing_to(log: Path) -> int | None:
    """The process whose stdout is the file `log` (a worker redirects its output there)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "fd" / "1") == str(log):
                    return int(entry.name)
            except OSError:
                continue
    return None


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
def test_worker_killed_from_outside(tmp_path):
    config = tmp_path / "kill.toml"
    config.write_text(
        """
[sweep]
title = "kill"
datasets = ["digits"]
threads = [1]
losses = ["cce"]
backends = ["numpy-loop"]
[[sweep.parts]]
name = "victim"
batch_sizes = [1]
epochs = [1000]
[[sweep.parts]]
name = "next"
batch_sizes = [256]
epochs = [1]
"""
    )
    out = tmp_path / "out"
    cmd, kw = bench_command("run", "--config", str(config), "--quiet", "--out", str(out))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    try:
        deadline = time.monotonic() + 60
        worker = None
        while worker is None and time.monotonic() < deadline:
            time.sleep(0.1)
            for log in out.glob("*-kill/logs/worker-numpy-loop-t1.log"):
                worker = _pid_writing_to(log)
        assert worker is not None, "the numpy-loop worker did not start"
        time.sleep(1.0)  # well into the victim's 1000 epochs
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    rows = {r["part"]: r for r in read_rows(out.strip().splitlines()[-1])}
    assert rows["victim"]["status"] == "error"
    assert "worker process died from SIGKILL" in rows["victim"]["error"]
    assert rows["next"]["status"] == "ok"  # a new worker took the next cell


# ---------------------------------------------------------------------------------------------
# interruption and resume


def test_sigterm_then_resume_recovers_a_cut_row(tmp_path):
    """SIGTERM keeps every finished cell and marks the run interrupted; a results.csv cut
    mid-line loses only the cut row, and --resume runs it and the unfinished cells again."""
    config = tmp_path / "term.toml"
    config.write_text(
        """
[sweep]
title = "term"
datasets = ["digits"]
threads = [1]
epochs = [2]
batch_sizes = [256]
[[sweep.parts]]
name = "a"
backends = ["numpy-vec"]
losses = ["cce", "mse"]
[[sweep.parts]]
name = "b"
backends = ["numpy-loop"]
losses = ["cce"]
batch_sizes = [1]
epochs = [20]
[[sweep.parts]]
name = "c"
backends = ["numpy-vec"]
losses = ["bce"]
lrs = [1.0]
"""
    )
    out = tmp_path / "out"
    cmd, kw = bench_command("run", "--config", str(config), "--quiet", "--out", str(out))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    try:
        deadline = time.monotonic() + 60
        run_dir = None
        while time.monotonic() < deadline:
            folders = list(out.glob("*-term")) if out.is_dir() else []
            if (
                folders
                and (folders[0] / "results.csv").exists()
                and len(read_rows(folders[0])) >= 2
            ):
                run_dir = folders[0]
                break
            time.sleep(0.05)
        assert run_dir is not None, "the first cells did not finish in time"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert f"finish with: python -m bench run --resume {run_dir}" in err
    first = read_rows(run_dir)
    assert [r["part"] for r in first] == ["a", "a"]  # both finished cells are on disk
    assert len(read_curves(run_dir)) == 4
    assert read_env(run_dir)["status"] == "interrupted"
    # a power cut mid-write: the second row is cut off
    text = (run_dir / "results.csv").read_text()
    cut = text.rindex("\n", 0, len(text) - 1) + 30
    (run_dir / "results.csv").write_text(text[:cut])
    done = run_bench("run", "--resume", str(run_dir), "--quiet", timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(run_dir)
    rows = read_rows(run_dir)
    assert rows[0] == first[0]  # the complete row was kept, not rerun
    assert [(r["part"], r["loss"]) for r in rows] == [
        ("a", "cce"),
        ("a", "mse"),  # the cut row, run again
        ("b", "cce"),
        ("c", "bce"),
    ]
    assert {r["status"] for r in rows} == {"ok"}
    per_cell = {}
    for c in read_curves(run_dir):
        per_cell.setdefault(c["cell_id"], []).append(int(c["epoch"]))
    assert sorted(map(len, per_cell.values())) == [2, 2, 2, 20]
    assert all(e == list(range(1, len(e) + 1)) for e in per_cell.values())  # no duplicates
    assert read_env(run_dir)["status"] == "complete"


# ---------------------------------------------------------------------------------------------
# the output folder


@pytest.mark.parametrize(
    "where,message",
    [
        ("blocker/sub", "cannot create the results folder {out}: Not a directory"),
        ("blocker", "cannot use {out} as the results folder (--out): it is a file"),
    ],
)
def test_unwritable_output_fails_before_training(tmp_path, capsys, where, message):
    (tmp_path / "blocker").write_text("")
    out = tmp_path / where
    code, _, err = _cli(["run", *TINY, "--out", str(out)], capsys)
    assert code == 2
    assert _error_line(err) == "error: " + message.format(out=out)
    assert list(tmp_path.iterdir()) == [tmp_path / "blocker"]  # nothing made, nothing run


def test_runs_started_together_get_separate_folders(tmp_path):
    """Two runs of one name started at once: each writes a folder of its own, named
    `<time>-<name>`, with `-2` on the second made within the same second, and nothing of
    the other run in it."""
    out = tmp_path / "out"
    cmd, kw = bench_command("run", *TINY, "--name", "same name", "--quiet", "--out", str(out))
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    run_dirs = [Path(o.strip().splitlines()[-1]) for o, _ in results]
    assert len(set(run_dirs)) == 2 and sorted(run_dirs) == sorted(out.iterdir())
    names = sorted(d.name for d in run_dirs)
    stamps = [re.fullmatch(r"(\d{8}-\d{6})-same-name(-2)?", n) for n in names]
    assert all(stamps), names
    if stamps[0][1] == stamps[1][1]:  # made within one second: the second is numbered
        assert [m[2] for m in stamps] == [None, "-2"], names
    for run_dir in run_dirs:
        assert (run_dir / "results.csv").read_text().startswith("run_id,")
        assert [r["run_id"] for r in read_rows(run_dir)] == [run_dir.name]
        assert {c["run_id"] for c in read_curves(run_dir)} == {run_dir.name}
        env = read_env(run_dir)
        assert env["run_id"] == run_dir.name and env["status"] == "complete"


# ---------------------------------------------------------------------------------------------
# folders that are not runs


def test_report_and_resume_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = _cli(["report", str(tmp_path / "empty")], capsys)
    assert code == 2
    assert f"{tmp_path / 'empty'} is not a run folder" in _error_line(err)
    code, _, err = _cli(["report", str(tmp_path / "nope")], capsys)
    assert code == 2 and "is not a run folder" in _error_line(err)
    code, _, err = _cli(["run", "--resume", str(tmp_path / "empty")], capsys)
    assert code == 2
    assert f"{tmp_path / 'empty'} is not a run folder: no env.json" in _error_line(err)
