"""`python -m bench list`: every name a sweep accepts, with what it means and, where it cannot
run here, why."""

from bench import listing
from bench.datasets import PREPROCESSING
from bench.sweep.presets import PRESETS
from impls import ACTIVATION_NAMES, BACKENDS, LOSS_NAMES, OPTIMIZER_NAMES


def _section(text, title):
    block = text.split(f"{title}\n", 1)[1].split("\n\n", 1)[0]
    return {line.split()[0]: line.split(None, 1)[1] for line in block.splitlines()}


def test_every_name_is_listed_with_a_description(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    text = listing.render_listing(data_dir=tmp_path)
    for title, names in [
        ("backends", BACKENDS),
        ("preprocessing", PREPROCESSING),
        ("losses", LOSS_NAMES),
        ("optimizers", OPTIMIZER_NAMES),
        ("activations", ACTIVATION_NAMES),
        ("presets", PRESETS),
    ]:
        rows = _section(text, title)
        assert set(rows) == set(names), title
        assert all(description.strip() for description in rows.values()), title
    datasets = _section(text, "datasets")
    assert {"digits", "mnist", "fashion-mnist", "breast-cancer"} <= set(datasets)
    assert "--data-dir" in datasets["mnist"]  # not found here: says how to provide it


def test_unavailable_backend_says_why(monkeypatch):
    reason = 'PyTorch is not installed: pip install "mlp-bench[torch]"'
    monkeypatch.setattr(
        listing,
        "available_backends",
        lambda: {name: (reason if name == "torch" else None) for name in BACKENDS},
    )
    rows = _section(listing.render_listing(), "backends")
    assert rows["torch"].endswith(f"[unavailable: {reason}]")
    assert "unavailable" not in rows["numpy-vec"]
