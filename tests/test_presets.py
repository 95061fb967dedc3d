"""Presets run what they describe: each preset runs for one epoch on a tiny slice of its data,
and the settings recorded in results.csv are compared with what its description, notes and the
README's preset table say (written out below from those texts, not from the preset's sweep).

MNIST and Fashion-MNIST are a few hundred random 28x28 images with pixel values 0..255 written
as IDX files (raw pixels stay 0..255 unless the preset scales them); the synthetic presets run
on a small synthetic set; the digits presets on digits itself.
"""

import gzip

import numpy as np
import pytest

from bench.sweep.presets import PRESETS

N_TRAIN, N_TEST = 120, 30
DEEP = "500x200x100x30x30x30"

# preset -> part -> the settings its description claims (columns of results.csv)
EXPECTED = {
    "seed000": {
        # "minmax per sample, ... 64-100-10 relu, sigmoid output, weights uniform ±0.01",
        # "online SGD (batch 1, fixed order)", lr 0.001 of a summed bce -> 0.01
        "online-sgd": dict(
            dataset="digits",
            preprocess="minmax",
            hidden="100",
            activation="relu",
            output="sigmoid",
            loss="bce",
            optimizer="sgd",
            lr=0.01,
            batch_size=1,
            order="fixed",
            init="uniform:0.01",
            momentum=0.0,
            weight_decay=0.0,
        ),
        # "Keras's Adam 1e-4, batch 1", shuffled as fit(shuffle=True), Keras's default init
        "keras-adam": dict(
            dataset="digits",
            preprocess="minmax",
            hidden="100",
            activation="relu",
            output="sigmoid",
            loss="bce",
            optimizer="adam",
            lr=1e-4,
            batch_size=1,
            order="shuffle",
            init="glorot_uniform",
            weight_decay=0.0,
        ),
    },
    "seed001": {
        # "MNIST raw pixels, 784-64-32-10 sigmoid layers, sigmoid output, mse, SGD batch 32 in
        # a fixed order, N(0, 1) weights and biases"; lr 0.001 of a summed mse -> 0.32
        "": dict(
            dataset="mnist",
            preprocess="none",
            hidden="64x32",
            activation="sigmoid",
            output="sigmoid",
            loss="mse",
            optimizer="sgd",
            lr=0.32,
            batch_size=32,
            order="fixed",
            init="standard_normal,bias",
            momentum=0.0,
            weight_decay=0.0,
            eval_every=5,
        ),
    },
    "seed002": {
        # "MNIST scaled, 784-10-10 relu/softmax, cce, full-batch gradient descent lr 0.01,
        # weights and biases ±0.5"
        "": dict(
            dataset="mnist",
            preprocess="scale",
            hidden="10",
            activation="relu",
            output="softmax",
            loss="cce",
            optimizer="sgd",
            lr=0.01,
            batch_size=N_TRAIN,
            order="fixed",
            init="uniform:0.5,bias",
            momentum=0.0,
            weight_decay=0.0,
            eval_every=50,
        ),
    },
    "seed003": {
        # "MNIST raw pixels, 784-500-200-100-30-30-30-10 relu/softmax, batch 1000, N(0, 0.1²)
        # init [weights and biases], reshuffled every epoch: cce lr 0.01, then mse with weight
        # decay" (lr 0.15, decay 0.02 in the contract's scale)
        "cce": dict(
            dataset="mnist",
            preprocess="none",
            hidden=DEEP,
            activation="relu",
            output="softmax",
            loss="cce",
            optimizer="sgd",
            lr=0.01,
            batch_size=1000,
            order="shuffle",
            init="normal:0.1,bias",
            momentum=0.0,
            weight_decay=0.0,
        ),
        "mse-decay": dict(
            dataset="mnist",
            preprocess="none",
            hidden=DEEP,
            activation="relu",
            output="softmax",
            loss="mse",
            optimizer="sgd",
            lr=0.15,
            batch_size=1000,
            order="shuffle",
            init="normal:0.1,bias",
            momentum=0.0,
            weight_decay=0.02,
        ),
    },
    "seed004": {
        # "digits standardised, 70/30 split, 64-32-32-10 relu/softmax, cce, full-batch
        # gradient descent lr 0.01, N(0, 1) init" (biases as a weight row: drawn alike)
        "": dict(
            dataset="digits",
            preprocess="standardize",
            hidden="32x32",
            activation="relu",
            output="softmax",
            loss="cce",
            optimizer="sgd",
            lr=0.01,
            batch_size=1257,
            order="shuffle",
            init="standard_normal,bias",
            momentum=0.0,
            weight_decay=0.0,
            eval_every=1000,
            n_train=1257,
            n_test=540,
        ),
    },
    "fashion": {
        # "Fashion-MNIST scaled, 784-256-128-10 relu/softmax, Adam 1e-3, batch 128"
        "": dict(
            dataset="fashion-mnist",
            preprocess="scale",
            hidden="256x128",
            activation="relu",
            output="softmax",
            loss="cce",
            optimizer="adam",
            lr=1e-3,
            batch_size=128,
            order="shuffle",
            init="glorot_uniform",
            weight_decay=0.0,
        ),
    },
    "throughput": {
        # "784-256-128-10 float32 ... batch sizes 1 to 1024 (powers of 2), 3 repeats; the
        # per-sample numpy-loop against numpy-vec at batch 1"
        part: dict(
            preprocess="standardize",
            hidden="256x128",
            activation="relu",
            output="softmax",
            loss="cce",
            optimizer="sgd",
            dtype="float32",
            n_features=784,
            n_classes=10,
            **({"batch_size": 1, "threads": 1} if part == "per-sample" else {}),
        )
        for part in ("batch", "per-sample")
    },
    "scaling": {
        # "time per epoch ... batch size, hidden width and the number of samples ...
        # synthetic 784-feature data"
        part: dict(
            preprocess="standardize",
            activation="relu",
            output="softmax",
            loss="cce",
            optimizer="sgd",
            n_features=784,
            n_classes=10,
        )
        for part in ("batch", "width", "samples", "threads")
    },
}
EXPECTED["peers"] = {
    # "Every backend side by side ...: digits 64-100-10 and an MNIST-sized synthetic
    # 784-256-128-10, cce, Adam 1e-3, batch 64"
    "digits": dict(
        dataset="digits",
        preprocess="scale",
        hidden="100",
        activation="relu",
        output="softmax",
        loss="cce",
        optimizer="adam",
        lr=1e-3,
        batch_size=64,
    ),
    "mnist-sized": dict(
        preprocess="standardize",
        hidden="256x128",
        activation="relu",
        output="softmax",
        loss="cce",
        optimizer="adam",
        lr=1e-3,
        batch_size=64,
        n_features=784,
        n_classes=10,
    ),
}
# settings that vary within a preset: the values its rows must show, all of them
VARYING = {
    "throughput": {"batch_size": {2**k for k in range(11)}, "repeat": {0, 1, 2}},
    "scaling": {"hidden": {"32", "64", "128", "256", "512", "1024", "256x128"}},
}


def _write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    header = (0x800 | array.ndim).to_bytes(4, "big")
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


@pytest.fixture(scope="module")
def image_data(tmp_path_factory):
    """Raw 0..255 images in MNIST's IDX files, for mnist and fashion-mnist alike."""
    folder = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = rng.integers(0, 256, size=(n, 28, 28))
        images[0, 0, 0] = 255
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


def _seed_network(name):
    """The seed notebook's own network the preset runs (examples/seeds/), or None."""
    from bench.sweep.presets import seed_network

    seed = PRESETS[name].seed
    return None if seed is None else seed_network(seed)


def _run(name, image_data, tmp_path, monkeypatch):
    """One epoch of the preset on numpy-vec and, for a seed preset, the notebook's network."""
    import bench

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLP_BENCH_DATA", raising=False)
    mine = _seed_network(name)
    backends = ["numpy-vec", *([mine] if mine else [])]
    overrides = {"epochs": [1], "backends": backends, "threads": [1]}
    if "eval_every" in PRESETS[name].sweep:  # kept as the preset says, to check it is recorded
        overrides["eval_every"] = PRESETS[name].sweep["eval_every"]
    datasets = {
        d
        for part in [PRESETS[name].sweep, *PRESETS[name].sweep.get("parts", [])]
        for d in part.get("datasets", [])
    }
    if datasets & {"mnist", "fashion-mnist"}:
        overrides["data_dir"] = str(image_data)
    elif datasets and all(d.startswith("synthetic") for d in datasets):
        overrides["datasets"] = [f"synthetic:n={int((N_TRAIN + N_TEST) * 1.25)},d=784,k=10"]
    results = bench.run_sweep(preset=name, out=tmp_path / "out", **overrides)
    return results


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_records_the_settings_it_describes(name, image_data, tmp_path, monkeypatch):
    assert name in EXPECTED, f"preset {name}: add what its description claims to EXPECTED"
    results = _run(name, image_data, tmp_path, monkeypatch)
    mine = _seed_network(name)
    if mine is not None:  # the notebook's network, where the preset runs it, trains as numpy-vec
        results = _check_seed_network(name, mine, results)
    assert (results["status"] == "ok").all(), results[["part", "status", "error"]]
    expected = EXPECTED[name]
    parts = set(results["part"])
    assert parts == set(expected) or (set(expected) == {""} and len(parts) == 1), parts
    for part, settings in expected.items():
        rows = results if part == "" else results[results["part"] == part]
        assert len(rows), part
        for column, value in settings.items():
            recorded = rows[column]
            if isinstance(value, float):
                ok = np.isclose(recorded.astype(float), value).all()
            else:
                ok = (recorded.astype(str) == str(value)).all()
            assert ok, (
                f"{name} {part or ''}: {column} recorded {sorted(set(recorded))}, "
                f"the description says {value!r}"
            )
    for column, values in VARYING.get(name, {}).items():
        assert set(results[column].astype(type(next(iter(values))))) == values, column
    assert (results["epochs_run"] == 1).all()


def _check_seed_network(name, mine, results):
    """The seed network's rows: ok in every part the preset lists it in, with numpy-vec's
    loss and accuracy (same start, same batches, same update); skipped (not supported) in the
    others. Returns numpy-vec's rows."""
    from bench.sweep.presets import preset_mapping

    sweep = preset_mapping(name)
    parts = sweep.get("parts") or [{"name": "main"}]
    listed = {
        p.get("name", "main") for p in parts if mine in p.get("backends", sweep.get("backends", []))
    }
    assert listed, f"{name} does not run the notebook's network"
    ref = results[results["backend"] == "numpy-vec"].set_index("part")
    rows = results[results["backend"] == mine].set_index("part")
    assert set(rows.index) == set(ref.index), rows.index
    for part, row in rows.iterrows():
        if part not in listed:
            assert row["status"] == "skipped" and "NotImplementedError" in row["error"], part
            continue
        assert row["status"] == "ok", (part, row["error"])
        for column in ("train_loss", "test_loss", "test_acc"):
            assert np.isclose(row[column], ref.loc[part, column], rtol=1e-4), (part, column)
    return results[results["backend"] == "numpy-vec"]


def test_seed_presets_find_their_network_from_any_folder(tmp_path, monkeypatch):
    """Each seed preset names its notebook's network by an absolute path that exists, so the
    preset runs (and its run folder resumes) from any working directory."""
    import os

    from bench.sweep.build import build_sweep, expand
    from bench.sweep.presets import preset_mapping

    monkeypatch.chdir(tmp_path)
    for name, preset in PRESETS.items():
        if preset.seed is None:
            continue
        mine = _seed_network(name)
        path, _, cls = mine.rpartition(":")
        assert os.path.isabs(path) and os.path.isfile(path), mine
        assert cls == f"Seed{preset.seed}MLP"
        backends = {cell.backend for cell in expand(build_sweep(preset_mapping(name)))}
        assert mine in backends, name


def test_raw_pixel_presets_train_on_raw_values(image_data, tmp_path, monkeypatch):
    """seed001 and seed003 say raw pixels: the data the workers train on keeps 0..255."""
    from bench.datasets import load_dataset
    from bench.sweep.presets import preset_mapping

    for name in ("seed001", "seed003"):
        preprocess = preset_mapping(name)["preprocess"]
        ds = load_dataset("mnist", preprocess=preprocess, data_dir=image_data, download=False)
        assert ds.X_train.max() == 255 and ds.X_train.min() == 0, name


def test_presets_run_on_the_backends_they_say():
    """Every preset runs on every installed default backend; `peers` on every backend; a seed
    preset also on its notebook's own network."""
    from bench.sweep.build import build_sweep, expand
    from bench.sweep.presets import preset_mapping
    from impls import BACKENDS, available_backends
    from impls.registry import DEFAULT_BACKENDS

    installed = {b for b, reason in available_backends().items() if reason is None}
    for name in PRESETS:
        backends = {cell.backend for cell in expand(build_sweep(preset_mapping(name)))}
        backends -= {_seed_network(name)}  # a seed preset's own network, besides
        assert backends <= set(BACKENDS), name
        wanted = set(BACKENDS) if name == "peers" else set(DEFAULT_BACKENDS)
        assert backends >= wanted & installed, name


def test_every_preset_is_described():
    for name, preset in PRESETS.items():
        assert preset.description.strip(), name
        if preset.seed is not None:
            assert preset.reported, name  # what the seed notebook reported, for comparison
    assert set(EXPECTED) == set(PRESETS)
