"""`import impls, bench` needs NumPy alone and never imports a framework."""

import subprocess
import sys
import textwrap

FRAMEWORKS = ("torch", "tensorflow", "keras", "jax")


def _run(code):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_leaves_frameworks_out():
    out = _run(
        f"""
        import sys
        import impls, bench, bench.datasets
        impls.available_backends()
        print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


def test_numpy_alone_is_enough():
    """With every non-NumPy package made unimportable, impls and bench import, backends
    report themselves, and numpy-vec trains."""
    out = _run(
        """
        import sys
        BLOCKED = {"torch", "tensorflow", "keras", "jax", "pandas", "sklearn", "scipy",
                   "matplotlib", "tqdm", "threadpoolctl"}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{name} blocked for this test")

        sys.meta_path.insert(0, Block())
        import numpy as np
        import impls, bench, bench.datasets
        spec = impls.MLPSpec((3, 4, 2))
        model = impls.make_model("numpy-vec", spec, impls.init_params(spec))
        X = np.ones((5, 3), dtype="float32"); Y = np.eye(2, dtype="float32")[[0, 1, 0, 1, 0]]
        print(np.isfinite(model.train_epoch(X, Y, 2)))
        """
    )
    assert out.strip() == "True"
