"""The network specification shared by every backend: `MLPSpec` and its validation."""

from __future__ import annotations

import difflib
import math
import numbers
import re
from dataclasses import dataclass

ACTIVATION_NAMES = ("relu", "sigmoid", "tanh")
OUTPUT_NAMES = ("softmax", "sigmoid", "linear")
LOSS_NAMES = ("cce", "bce", "mse")
OPTIMIZER_NAMES = ("sgd", "adam")
DTYPE_NAMES = ("float32", "float64")

# Output activations each loss accepts. cce and bce are computed from the logits, so their
# output activation is fixed; mse is taken on the output activation, whichever it is.
LOSS_OUTPUTS = {
    "cce": ("softmax",),
    "bce": ("sigmoid",),
    "mse": ("softmax", "sigmoid", "linear"),
}

# The output activation a loss uses when none is given.
DEFAULT_OUTPUT = {"cce": "softmax", "bce": "sigmoid", "mse": "softmax"}

_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def device_kind(device: str) -> str:
    """The kind of a device name, without its index: "cpu" or "cuda"."""
    return device.partition(":")[0]


def device_index(device: str) -> int:
    """The index of a cuda device name ("cuda" is device 0); 0 for the CPU."""
    return int(device.partition(":")[2] or 0)


def unknown_name_message(kind: str, given: object, valid) -> str:
    """One line naming an unknown `kind`, the valid names and the closest match, if any."""
    valid = list(valid)
    text = f"unknown {kind} {given!r}; valid: {', '.join(valid)}"
    close = difflib.get_close_matches(str(given), valid, n=1, cutoff=0.5)
    if close:
        text += f" (did you mean {close[0]!r}?)"
    return text


def check_name(kind: str, given: object, valid) -> str:
    """Return `given` if it is one of `valid`, else raise ValueError naming the valid ones."""
    if not isinstance(given, str) or given not in valid:
        raise ValueError(unknown_name_message(kind, given, valid))
    return given


def _positive_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def _finite_real(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


@dataclass(frozen=True)
class MLPSpec:
    """A dense network and its training rule, identical for every backend.

    `layer_sizes` lists the widths from input to output, e.g. (64, 100, 10). Hidden layers use
    `activation`; the last layer's output activation is `output`. `loss` is cce or bce (taken
    from the logits) or mse (taken on the output activation). `weight_decay` λ adds ½λ‖W‖² over
    the weights (not the biases) to the training objective. Validated when built: anything
    invalid raises ValueError naming what was given and what is valid.
    """

    layer_sizes: tuple[int, ...]
    activation: str = "relu"
    output: str | None = None
    loss: str = "cce"
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-7
    dtype: str = "float32"
    device: str = "cpu"
    # float32 matrix products on a GPU's TF32 tensor cores (10-bit mantissa inputs), where the
    # backend's library supports it; off by default, so every device computes in full float32
    tf32: bool = False

    def __post_init__(self) -> None:
        sizes = self.layer_sizes
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise ValueError(f"layer_sizes must be a sequence of positive integers, got {sizes!r}")
        sizes = tuple(sizes)
        if len(sizes) < 2 or not all(_positive_int(s) for s in sizes):
            raise ValueError(
                "layer_sizes must hold at least two positive integers (input and output "
                f"widths), got {self.layer_sizes!r}"
            )
        object.__setattr__(self, "layer_sizes", tuple(int(s) for s in sizes))

        check_name("activation", self.activation, ACTIVATION_NAMES)
        check_name("loss", self.loss, LOSS_NAMES)
        output = DEFAULT_OUTPUT[self.loss] if self.output is None else self.output
        check_name("output activation", output, OUTPUT_NAMES)
        if output not in LOSS_OUTPUTS[self.loss]:
            raise ValueError(
                f"loss {self.loss!r} cannot be used with output {output!r}; it needs output "
                f"{' or '.join(repr(o) for o in LOSS_OUTPUTS[self.loss])}"
            )
        object.__setattr__(self, "output", output)
        if output == "softmax" and sizes[-1] < 2:
            raise ValueError("a softmax output needs at least 2 units, got 1")

        check_name("optimizer", self.optimizer, OPTIMIZER_NAMES)
        check_name("dtype", self.dtype, DTYPE_NAMES)

        if not _finite_real(self.lr) or self.lr <= 0:
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not _finite_real(self.momentum) or not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(
                f"momentum applies to optimizer 'sgd' only, got momentum={self.momentum!r} "
                f"with {self.optimizer!r}"
            )
        if not _finite_real(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(
                f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}"
            )
        betas = tuple(self.betas) if hasattr(self.betas, "__iter__") else ()
        if len(betas) != 2 or not all(_finite_real(b) and 0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if not _finite_real(self.eps) or self.eps <= 0:
            raise ValueError(f"eps must be a finite number > 0, got {self.eps!r}")
        if not isinstance(self.device, str) or not _DEVICE_RE.match(self.device):
            raise ValueError(f"unknown device {self.device!r}; valid: 'cpu', 'cuda', 'cuda:N'")
        if not isinstance(self.tf32, bool):
            raise ValueError(f"tf32 must be True or False, got {self.tf32!r}")
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "momentum", float(self.momentum))
        object.__setattr__(self, "weight_decay", float(self.weight_decay))
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        object.__setattr__(self, "eps", float(self.eps))

    @property
    def device_kind(self) -> str:
        """The kind of device, without its index: "cpu" or "cuda"."""
        return device_kind(self.device)

    @property
    def device_index(self) -> int:
        """The index of a cuda device ("cuda" is device 0); 0 for the CPU."""
        return device_index(self.device)

    @property
    def n_inputs(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def n_layers(self) -> int:
        """Number of weight layers (hidden layers + the output layer)."""
        return len(self.layer_sizes) - 1

    @property
    def n_params(self) -> int:
        """Weights and biases together."""
        return sum((a + 1) * b for a, b in zip(self.layer_sizes[:-1], self.layer_sizes[1:]))

    @property
    def n_weights(self) -> int:
        """Weights only (no biases): the multiply-adds of one forward pass per sample."""
        return sum(a * b for a, b in zip(self.layer_sizes[:-1], self.layer_sizes[1:]))

    @property
    def flops_per_sample(self) -> int:
        """The floating-point operations of the products one training sample needs: per
        layer 2·W for the forward pass and 2·W for the weight gradient, and 2·W for the input
        gradient of every layer but the first (nothing needs the gradient of the inputs), so
        6·ΣW − 2·W₁. At the machine's matmul rate this count reads 100%, never more."""
        first = self.layer_sizes[0] * self.layer_sizes[1]
        return 6 * self.n_weights - 2 * first

    def step_products(self, batch: int) -> list[tuple[str, tuple, bool, tuple, bool]]:
        """The matrix products of one training step on `batch` samples, as the hand-written
        core computes them: (name, A's stored shape, A used transposed, B's stored shape, B
        used transposed). Per layer l the forward a_{l-1} W_l and the weight gradient
        a_{l-1}^T delta_l, and for l > 1 the input gradient delta_l W_l^T; their FLOP count
        is batch × flops_per_sample. For timing the products alone (scripts/blas-check)."""
        out = []
        for layer, (n_in, n_out) in enumerate(zip(self.layer_sizes[:-1], self.layer_sizes[1:])):
            n = layer + 1
            out.append((f"forward {n}", (batch, n_in), False, (n_in, n_out), False))
            out.append((f"weight gradient {n}", (batch, n_in), True, (batch, n_out), False))
            if layer:
                out.append((f"input gradient {n}", (batch, n_out), False, (n_in, n_out), True))
        return out
