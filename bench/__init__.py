"""mlp-bench's harness: datasets, sweeps, measurement, the run folder, reports and the CLI.

`import bench` is light (NumPy at most); the pieces load when used:

    bench.run_sweep(config=None, *, preset=None, resume=None, out="results",
                    progress=False, **overrides) -> DataFrame     (bench.run.runner)
    bench.load_run(path) -> (results, curves)                     (bench.report.loading)

The layout, one subpackage per layer, and the design behind it: docs/design.md.
"""

__all__ = ["load_run", "run_sweep"]


def __getattr__(name):
    if name == "run_sweep":
        from bench.run.runner import run_sweep

        return run_sweep
    if name == "load_run":
        from bench.report.loading import load_run

        return load_run
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
