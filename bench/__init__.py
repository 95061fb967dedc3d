"""mlp-bench's harness: datasets, sweeps, measurement, the run folder, reports and the CLI.

`import bench` is light (NumPy at most); the pieces load when used:

    bench.run_sweep(preset=None, resume=None, out="results", **overrides) -> DataFrame
    bench.load_run(path) -> (results, curves)
"""

__all__ = ["load_run", "run_sweep"]


def __getattr__(name):
    if name == "run_sweep":
        from bench.run.runner import run_sweep

        return run_sweep
    if name == "load_run":
        from bench.report.write import load_run

        return load_run
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
