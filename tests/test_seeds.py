"""The seed notebooks' own networks (examples/seeds/): each conforms to the contract on every
setting it supports, through the conformance check `bench verify --backends` runs; each
reproduces its notebook where the notebook printed a result that does not depend on random
weights; and the learning rates the seed presets pass are, after the class's and the harness's
conversions, the step sizes the notebooks used."""

import io

import numpy as np
import pytest
from helpers import ROOT, run_bench

from bench.sweep.presets import PRESETS, preset_mapping, seed_network

SEEDS = ("000", "001", "002", "003", "004")


def _model(seed, spec, params):
    from impls import make_model

    return make_model(seed_network(seed), spec, params)


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_network_conforms_on_what_it_supports(seed):
    """Every supported case agrees with numpy-vec (1e-9 in float64, 1e-4 in float32), and
    at least one case is checked."""
    from bench.check.conformance import run_conformance

    out = io.StringIO()
    status = run_conformance(seed_network(seed), out=out)
    report = out.getvalue()
    assert status == 0, report
    assert "FAIL" not in report and "conforms" in report, report
    assert "0 of 0" not in report, report


def test_verify_command_checks_a_seed_network_by_its_relative_path():
    """What a user types from the repository: the class is found by its file, its declared
    conventions converted, and every supported case passes."""
    done = run_bench("verify", "--backends", "examples/seeds/seed001.py:Seed001MLP", cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'loss_over_batch': 'sum'" in done.stdout
    assert "conforms" in done.stdout


def test_seed001_takes_a_short_last_batch_as_the_contract_does():
    """Seed001 sums over the batch (lr / batch_size from the harness); the notebook never met
    a short batch, and the class takes one of 4 after one of 8 as numpy-vec does."""
    from impls import MLPSpec, init_params, make_model

    spec = MLPSpec((64, 16, 10), "sigmoid", "sigmoid", "mse", lr=0.5, dtype="float64")
    params = init_params(spec, seed=1)
    rng = np.random.default_rng(0)
    X, Y, order = rng.random((12, 64)), np.eye(10)[rng.integers(0, 10, 12)], rng.permutation(12)
    mine, ref = _model("001", spec, params), make_model("numpy-vec", spec, params)
    losses = [model.train_epoch(X, Y, 8, order) for model in (mine, ref)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    for (W, b), (W_ref, b_ref) in zip(mine.get_params(), ref.get_params()):
        np.testing.assert_allclose(W, W_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b, b_ref, rtol=0, atol=1e-12)


def test_seed004_reproduces_the_notebooks_worked_example():
    """The notebook's one update of a 3-3-3 network on four samples (biases as row 0 of each
    matrix, zero), lr 0.1, printed to eight decimals."""
    from impls import MLPSpec

    X = np.array([[1.2, -0.4, 0.8], [-0.6, 2, -0.5], [0.3, -1.2, 1.7], [2.1, 0.5, -0.8]])
    labels = np.array([3, 1, 2, 3])
    Y = (labels[:, None] == np.array([1, 2, 3])).astype(float)  # OneHotEncoder's columns
    W = np.array([[0, 0, 0], [0.02, -0.01, 0.03], [-0.05, 0.04, 0.01], [0.03, 0.02, -0.02]])
    spec = MLPSpec((3, 3, 3), activation="relu", loss="cce", lr=0.1, dtype="float64")
    model = _model("004", spec, [(W[1:], W[0]), (W[1:], W[0])])
    model.train_epoch(X, Y, 4, np.arange(4))
    (W1, b1), (W2, b2) = model.get_params()
    W1_new = [
        [-0.00016792, -0.00125257, -0.0010004],
        [0.02032425, -0.00924846, 0.02722287],
        [-0.04946549, 0.03749486, 0.01092531],
        [0.0293399, 0.02062628, -0.02024931],
    ]
    W2_new = [
        [-0.00833061, -0.00833205, 0.01666266],
        [0.01845714, -0.0086132, 0.03015606],
        [-0.04873108, 0.03936466, 0.00936642],
        [0.02936574, 0.01906595, -0.0184317],
    ]
    np.testing.assert_allclose(np.vstack([b1, W1]), W1_new, atol=6e-9)
    np.testing.assert_allclose(np.vstack([b2, W2]), W2_new, atol=6e-9)


def _preset_spec(name, part=None, n_inputs=64):
    """The MLPSpec a preset (part) gives its cells, on the preset's own layer sizes."""
    from impls import MLPSpec

    sweep = preset_mapping(name)
    settings = dict(sweep)
    for p in sweep.get("parts", []):
        if p["name"] == part:
            settings.update(p)
    hidden = [int(h) for h in settings["hidden"][0].split("x")]
    return MLPSpec(
        (n_inputs, *hidden, 10),
        activation=settings["activations"][0],
        output=settings.get("output"),
        loss=settings["losses"][0],
        lr=settings["lrs"][0],
        weight_decay=settings.get("weight_decay", 0.0),
        dtype="float64",
    )


def _trained(seed, spec, batch_size):
    """The seed's model after one epoch at `batch_size` (its conventions then converted for
    that batch size), on zero weights."""
    from impls import init_params

    model = _model(seed, spec, init_params(spec, seed=0))
    n = 2 * batch_size
    X, Y = np.zeros((n, spec.n_inputs)), np.eye(10)[np.arange(n) % 10]
    model.train_epoch(X, Y, batch_size, np.arange(n))
    return model


def test_preset_learning_rates_are_the_notebooks_steps():
    """What the preset notes say, checked on the classes: the contract's lr of each preset,
    converted by the class (sums over the outputs) and by the harness (declared conventions),
    is the step size the notebook used."""
    assert _trained("000", _preset_spec("seed000", "online-sgd"), 1).alpha == pytest.approx(1e-3)
    seed001 = _trained("001", _preset_spec("seed001", n_inputs=784), 32)
    assert seed001.learning_rate == pytest.approx(1e-3)
    assert _trained("002", _preset_spec("seed002", n_inputs=784), 8).alpha == pytest.approx(0.01)
    seed003 = _trained("003", _preset_spec("seed003", "mse-decay", n_inputs=784), 8)
    assert seed003.alpha == pytest.approx(0.03) and seed003.wd == pytest.approx(0.05)
    seed003 = _trained("003", _preset_spec("seed003", "cce", n_inputs=784), 8)
    assert seed003.alpha == pytest.approx(0.01) and seed003.wd == 0
    assert _trained("004", _preset_spec("seed004"), 8).lr == pytest.approx(0.01)


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_network_refuses_what_its_notebook_does_not_do(seed):
    """Adam is none of the notebooks' own: each class says so with NotImplementedError, which
    verify reports as not supported and a run records as a skipped cell."""
    from impls import MLPSpec, init_params

    spec = MLPSpec((64, 16, 10), optimizer="adam", lr=1e-3)
    with pytest.raises(NotImplementedError):
        _model(seed, spec, init_params(spec, seed=0))


def test_every_seed_preset_runs_its_notebooks_network():
    assert {p.seed for p in PRESETS.values() if p.seed} == set(SEEDS)
    for seed in SEEDS:
        assert seed_network(seed).endswith(f"examples/seeds/seed{seed}.py:Seed{seed}MLP")
