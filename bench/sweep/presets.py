"""Named sweeps: the default quick sweep, one preset per seed notebook, and a few studies.

The seed presets reproduce each notebook's experiment as closely as the contract allows:
dataset, preprocessing, architecture, initialisation, loss, optimiser, batch size and epochs
(or full-batch iterations). Where a notebook's gradient was scaled differently from the
contract's losses (a sum instead of a mean), the learning rate is converted so the updates
are the same, and the description says how. Each seed preset runs the notebook's own network
(examples/seeds/, a plug-in written in the notebook's style) beside the default backends;
the other presets run on the default backends (`peers`: on every backend).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import UsageError
from impls.registry import DEFAULT_BACKENDS
from impls.spec import unknown_name_message

# the seed notebooks' own networks: examples/seeds/ of the repository holding this package
SEED_NETWORKS = Path(__file__).resolve().parents[2] / "examples" / "seeds"


def seed_network(seed: str) -> str | None:
    """Seed notebook `seed`'s own network as a plug-in backend, `/abs/path/seedNNN.py:SeedNNNMLP`
    (an absolute path, so a preset finds it from any folder and a run folder resumes anywhere);
    None where the examples are not there (an installed package without the repository)."""
    path = SEED_NETWORKS / f"seed{seed}.py"
    return f"{path}:Seed{seed}MLP" if path.is_file() else None


def beside_frameworks(seed: str) -> list[str]:
    """The default backends (numpy-loop, numpy-vec, keras, torch) and seed `seed`'s network."""
    mine = seed_network(seed)
    return [*DEFAULT_BACKENDS, *([mine] if mine else [])]


# The sweep `python -m bench run` runs with no flags. SGD learning rates differ by loss:
# bce and mse average over the 10 outputs, which scales their gradients down 10x.
DEFAULT = {
    "title": "quick",
    "datasets": ["digits"],
    "batch_sizes": [1, 32, 256],
    "optimizers": ["sgd"],
    "hidden": ["100"],
    "epochs": [10],
    "parts": [
        {"name": "cce", "losses": ["cce"], "lrs": [0.1]},
        {"name": "bce", "losses": ["bce"], "lrs": [1.0]},
        {"name": "mse", "losses": ["mse"], "lrs": [2.0]},
    ],
}


def default_base(overrides: Mapping) -> dict:
    """The mapping a run starts from when neither a preset nor a config file is given.

    DEFAULT pairs each loss with its own learning rate; once the losses or learning rates
    are given, those pairs no longer apply and the plain key defaults do."""
    if {"losses", "lrs"} & {k for k, v in overrides.items() if v is not None}:
        return {"title": "sweep"}
    return DEFAULT


@dataclass(frozen=True)
class Preset:
    description: str
    sweep: dict
    seed: str | None = None  # the seed notebook it reproduces
    reported: str | None = None  # what the notebook reported
    notes: tuple[str, ...] = field(default_factory=tuple)


PRESETS = {
    "seed000": Preset(
        description="Digits, per-sample online SGD with a sigmoid output and bce, next to "
        "Keras's Adam run of the same notebook",
        seed="000",
        reported="hand-written loop: test accuracy 0.975 after 100 epochs; Keras (Adam "
        "1e-4, batch 1): 0.986",
        notes=(
            "minmax per sample, 80/20 split with random_state 42, 64-100-10 relu, sigmoid "
            "output, weights uniform ±0.01",
            "the notebook's bce gradient is summed over the 10 outputs; with the contract's "
            "mean over outputs, its lr 0.001 becomes 0.01",
            "the notebook's network has no biases; here biases start at zero",
            "online-sgd keeps the notebook's fixed sample order; keras-adam shuffles, as "
            "Keras's fit(shuffle=True) did",
        ),
        sweep={
            "title": "seed000",
            "datasets": ["digits"],
            "preprocess": "minmax",
            "hidden": ["100"],
            "activations": ["relu"],
            "losses": ["bce"],
            "output": "sigmoid",
            "batch_sizes": [1],
            "epochs": [100],
            "parts": [
                {
                    "name": "online-sgd",
                    "backends": beside_frameworks("000"),
                    "optimizers": ["sgd"],
                    "lrs": [0.01],
                    "init": "uniform",
                    "init_scale": 0.01,
                    "order": "fixed",
                },
                # the notebook's own network steps by plain SGD only
                {
                    "name": "keras-adam",
                    "backends": list(DEFAULT_BACKENDS),
                    "optimizers": ["adam"],
                    "lrs": [1e-4],
                },
            ],
        },
    ),
    "seed001": Preset(
        description="MNIST raw pixels, 784-64-32-10 sigmoid layers with a sigmoid output and "
        "squared error, mini-batch SGD",
        seed="001",
        reported="about 90% test accuracy after 100 epochs (78.5% after 16)",
        notes=(
            "raw pixels (no scaling), weights and biases standard normal, batch 32 in the "
            "same fixed order every epoch, as the notebook",
            "the notebook's gradient is summed over the batch and the outputs of "
            "(pred - y)^2; with the contract's mean over both, its lr 0.001 becomes 0.32",
        ),
        sweep={
            "title": "seed001",
            "backends": beside_frameworks("001"),
            "datasets": ["mnist"],
            "preprocess": "none",
            "hidden": ["64x32"],
            "activations": ["sigmoid"],
            "losses": ["mse"],
            "output": "sigmoid",
            "optimizers": ["sgd"],
            "lrs": [0.32],
            "batch_sizes": [32],
            "epochs": [100],
            "init": "standard_normal",
            "init_bias": "like_weights",
            "order": "fixed",
            "eval_every": 5,
        },
    ),
    "seed002": Preset(
        description="MNIST scaled to [0, 1], 784-10-10 relu/softmax, cce, full-batch "
        "gradient descent for 500 iterations",
        seed="002",
        reported="train accuracy 84.75% after 500 iterations (on Kaggle's 42000-image "
        "training split)",
        notes=(
            "weights and biases uniform ±0.5 (rand - 0.5), lr 0.01, one update per epoch",
            "the notebook's bias gradient sums over classes too (a scalar); the contract's "
            "is per unit",
        ),
        sweep={
            "title": "seed002",
            "backends": beside_frameworks("002"),
            "datasets": ["mnist"],
            "preprocess": "scale",
            "hidden": ["10"],
            "activations": ["relu"],
            "losses": ["cce"],
            "optimizers": ["sgd"],
            "lrs": [0.01],
            "batch_sizes": ["full"],
            "epochs": [500],
            "init": "uniform",
            "init_scale": 0.5,
            "init_bias": "like_weights",
            "order": "fixed",
            "eval_every": 50,
        },
    ),
    "seed003": Preset(
        description="MNIST raw pixels, a deep 784-500-200-100-30-30-30-10 relu stack: cce, "
        "then mse with weight decay",
        seed="003",
        reported="cce: the run broke down after 2 epochs (test accuracy 0.28); mse with "
        "weight decay: test accuracy 0.827 after 20 epochs (best 0.854)",
        notes=(
            "raw pixels, weights and biases normal with std 0.1, batch 1000, reshuffled "
            "every epoch, 20 epochs",
            "the notebook's mse is sum/2 over outputs, so its gradient is 5x the contract's "
            "mean: lr 0.03 becomes 0.15; its decay term 2*0.05*W = 0.1 W is added to that "
            "5x gradient, so the same step is λ = 0.1 / 5 = 0.02 here (on weights only; the "
            "notebook also decays biases)",
        ),
        sweep={
            "title": "seed003",
            "backends": beside_frameworks("003"),
            "datasets": ["mnist"],
            "preprocess": "none",
            "hidden": ["500x200x100x30x30x30"],
            "activations": ["relu"],
            "optimizers": ["sgd"],
            "batch_sizes": [1000],
            "epochs": [20],
            "init": "normal",
            "init_scale": 0.1,
            "init_bias": "like_weights",
            "parts": [
                {"name": "cce", "losses": ["cce"], "lrs": [0.01]},
                {"name": "mse-decay", "losses": ["mse"], "lrs": [0.15], "weight_decay": 0.02},
            ],
        },
    ),
    "seed004": Preset(
        description="Digits standardised, 64-32-32-10 relu/softmax with biases as a weight "
        "row, cce, 20000 full-batch iterations",
        seed="004",
        reported="train accuracy 1.0, validation accuracy 0.863",
        notes=(
            "70/30 split with random_state 42 (the notebook's training set exactly); the "
            "notebook then halves its 30% into validation and test, here all 30% is the "
            "test set",
            "standard-normal weights and biases (the bias row of each matrix), lr 0.01",
        ),
        sweep={
            "title": "seed004",
            "backends": beside_frameworks("004"),
            "datasets": ["digits"],
            "preprocess": "standardize",
            "test_size": 0.3,
            "hidden": ["32x32"],
            "activations": ["relu"],
            "losses": ["cce"],
            "optimizers": ["sgd"],
            "lrs": [0.01],
            "batch_sizes": ["full"],
            "epochs": [20000],
            "init": "standard_normal",
            "init_bias": "like_weights",
            "eval_every": 1000,
        },
    ),
    "fashion": Preset(
        description="Fashion-MNIST, 784-256-128-10 relu/softmax, Adam 1e-3, batch 128, 10 epochs",
        reported="a 256-128-100 MLP: 0.8833 test accuracy on the dataset's benchmark page",
        sweep={
            "title": "fashion",
            "datasets": ["fashion-mnist"],
            "hidden": ["256x128"],
            "losses": ["cce"],
            "optimizers": ["adam"],
            "lrs": [1e-3],
            "batch_sizes": [128],
            "epochs": [10],
            # ten epochs of over a second each cannot pin a median down on a busy VM: up to
            # 30 s of extra timing epochs per cell can (bench.worker.measure.Training.time_more)
            "timing_budget": 30.0,
        },
    ),
}


PRESETS["scaling"] = Preset(
    description="How time per epoch grows with batch size, hidden width, the number of "
    "samples and the threads (1 and 2), per backend (synthetic 784-feature data; fitted "
    "log-log slopes and Amdahl's serial fraction in the summary)",
    sweep={
        "title": "scaling",
        # 3 epochs: the slow cells (batch 1, numpy-loop) need extra timing epochs to be timed.
        # Up to 30 s of them per cell: with 10 s, a 2-thread cell of 0.35-0.64 s epochs (20 of
        # them) still had its median unsettled on a quiet 2-core machine
        "timing_budget": 30.0,
        "losses": ["cce"],
        "optimizers": ["sgd"],
        "lrs": [0.01],
        "epochs": [3],
        "preprocess": "standardize",
        "parts": [
            {
                "name": "batch",
                "datasets": ["synthetic:n=5000,d=784,k=10"],
                "hidden": ["256x128"],
                "batch_sizes": [1, 4, 16, 64, 256, 1024],
            },
            {
                "name": "width",
                "datasets": ["synthetic:n=5000,d=784,k=10"],
                "hidden": ["32", "64", "128", "256", "512", "1024"],
                "batch_sizes": [128],
            },
            {
                "name": "samples",
                "hidden": ["256x128"],
                "batch_sizes": [128],
                "datasets": [
                    f"synthetic:n={n},d=784,k=10" for n in (2500, 5000, 10000, 20000, 40000)
                ],
            },
            {
                # the thread axis: how each backend's epoch falls from 1 to 2 threads, and the
                # serial fraction Amdahl's law leaves (the summary's Threads section)
                "name": "threads",
                "datasets": ["synthetic:n=10240,d=784,k=10"],  # 8192 training samples
                "hidden": ["256x128"],
                "batch_sizes": [128, 1024],
                "threads": [1, 2],
            },
        ],
    },
)


PRESETS["throughput"] = Preset(
    description="Training throughput of an MNIST-sized 784-256-128-10 float32 network at "
    "batch sizes 1 to 1024 (powers of 2), at 1 and 2 threads, 3 repeats, with its share of "
    "the matmul peak (counting the products a step computes) and each backend's ratio to "
    "the reference with its spread; the per-sample numpy-loop against numpy-vec at batch 1, "
    "1 thread",
    sweep={
        "title": "throughput",
        # Up to 30 s of extra timing epochs per cell: at 2 threads on a 2-core machine the
        # epochs of a quiet machine still spread 15-35%, and torch against numpy-vec sits near
        # parity at batch 128-1024, where a 10 s budget left intervals too wide to settle
        "timing_budget": 30.0,
        "datasets": ["synthetic:n=2560,d=784,k=10"],  # 2048 training samples
        "preprocess": "standardize",
        "hidden": ["256x128"],
        "losses": ["cce"],
        "optimizers": ["sgd"],
        "lrs": [0.01],
        "threads": [1, 2],
        "epochs": [3],
        "repeats": 3,
        "parts": [
            {
                "name": "batch",
                "backends": ["numpy-vec", "keras", "torch"],
                "batch_sizes": [2**k for k in range(11)],
            },
            {
                # numpy-loop takes one sample at a time, so its epoch takes the same time at
                # every batch size: it is timed where the question is, at batch 1 against
                # numpy-vec, which it sits near. One thread, which other work disturbs least:
                # at 2 threads on a quiet 2-core machine the two medians (99 epochs pooled over
                # the repeats) still moved 10%, too much to say which of two so close is faster
                "name": "per-sample",
                "backends": ["numpy-loop", "numpy-vec"],
                "batch_sizes": [1],
                "threads": [1],
            },
        ],
    },
)


def preset_mapping(name: str) -> dict:
    """The sweep mapping of preset `name` (a copy); UsageError naming the valid ones."""
    if name not in PRESETS:
        raise UsageError(unknown_name_message("preset", name, PRESETS))
    return copy.deepcopy(PRESETS[name].sweep)


def _every_backend() -> list[str]:
    """Every backend that runs on the CPU (the GPU's are compared with `--devices cuda`)."""
    from impls import BACKENDS  # names only: imports no framework

    return [name for name, backend in BACKENDS.items() if "cpu" in backend.devices]


PRESETS["peers"] = Preset(
    description="Every CPU backend side by side, the peers (jax, keras-jax, keras-torch, sklearn) "
    "included: digits 64-100-10 and an MNIST-sized synthetic 784-256-128-10, cce, Adam 1e-3, "
    "batch 64, 5 epochs (a backend not installed is skipped with its install command)",
    sweep={
        "title": "peers",
        "backends": _every_backend(),
        "losses": ["cce"],
        "optimizers": ["adam"],
        "lrs": [1e-3],
        "batch_sizes": [64],
        "epochs": [5],
        "parts": [
            {"name": "digits", "datasets": ["digits"], "hidden": ["100"]},
            {
                "name": "mnist-sized",
                "datasets": ["synthetic:n=12500,d=784,k=10"],  # 10000 training samples
                "preprocess": "standardize",
                "hidden": ["256x128"],
            },
        ],
    },
)
