"""`bench compare` on two real runs of a tiny sweep: the same plug-in backend, sleeping
20 ms inside train_epoch in the second run, is found slower and fails --fail-above 10."""

from pathlib import Path

from helpers import run_bench

SLEEPY = f"{Path(__file__).resolve().parent / 'sleepy_backend.py'}:Sleepy"


def _run(out: Path, sleep_s: str) -> Path:
    done = run_bench(
        "run",
        "--datasets", "synthetic:n=120,d=6,k=3",
        "--backends", SLEEPY,
        "--losses", "cce",
        "--batch-sizes", "32",
        "--hidden", "8",
        "--epochs", "8",
        "--threads", "1",
        "--out", str(out),
        "--quiet",
        env={"MLP_BENCH_SLEEP_S": sleep_s},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


def test_a_backend_that_sleeps_is_slower_and_fails_the_gate(tmp_path):
    base = _run(tmp_path / "base", "0")
    new = _run(tmp_path / "new", "0.02")
    done = run_bench("compare", str(base), str(new), "--fail-above", "10")
    assert done.returncode == 1, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if "Sleepy" in line and "|" in line)
    assert "slower" in row
    assert "significantly slower by more than 10%" in done.stderr
