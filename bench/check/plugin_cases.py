"""The cases `bench verify --backends NAME` checks a class on, and how they are narrowed.

A case is one setting of everything the class may support: hidden activation x (output
activation, loss) x optimiser path (plain SGD, SGD with momentum, SGD with weight decay, Adam)
x dtype. Every combination is a case; the cases are then narrowed by what the class declares it
supports (a `supports` class attribute, see `declared_support`) and by the options the user gave
(`select`). A setting the class refuses (NotImplementedError at construction) is learnt from
that case's own refusal, never from another case's.
"""

from __future__ import annotations

from dataclasses import dataclass

from impls.spec import ACTIVATION_NAMES, DTYPE_NAMES, LOSS_NAMES, OUTPUT_NAMES

HIDDEN = 16
DECAY = 2.0**-7
# optimiser path -> its MLPSpec settings
PATHS = {
    "sgd": {"optimizer": "sgd", "lr": 0.1},
    "momentum": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9},
    "decay": {"optimizer": "sgd", "lr": 0.1, "weight_decay": DECAY},
    "adam": {"optimizer": "adam", "lr": 0.01},
}
# (output activation, loss): every pair the contract allows
NETWORKS = (
    ("softmax", "cce"),
    ("sigmoid", "bce"),
    ("sigmoid", "mse"),
    ("softmax", "mse"),
    ("linear", "mse"),
)
DTYPES = ("float64", "float32")
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}
# what a `supports` declaration and the narrowing options may name, and the values allowed
SETTINGS = {
    "activation": ACTIVATION_NAMES,
    "output": OUTPUT_NAMES,
    "loss": LOSS_NAMES,
    "optimizer": tuple(PATHS),
    "dtype": DTYPE_NAMES,
}


@dataclass(frozen=True)
class Case:
    activation: str
    output: str
    loss: str
    optimizer: str  # a key of PATHS
    dtype: str

    @property
    def label(self) -> str:
        return f"{self.activation}→{self.output}/{self.loss}, {self.optimizer}, {self.dtype}"

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.dtype]

    def setting(self, key: str) -> str:
        return getattr(self, key)

    def spec(self, n_in: int, n_out: int):
        from impls import MLPSpec

        return MLPSpec(
            (n_in, HIDDEN, n_out),
            activation=self.activation,
            output=self.output,
            loss=self.loss,
            dtype=self.dtype,
            **PATHS[self.optimizer],
        )


def all_cases() -> list[Case]:
    return [
        Case(act, out, loss, path, dtype)
        for dtype in DTYPES
        for act in ACTIVATION_NAMES
        for out, loss in NETWORKS
        for path in PATHS
    ]


def check_settings(given: dict, what: str) -> dict[str, tuple[str, ...]]:
    """{setting: allowed values} from a `supports` declaration or the options; ValueError
    naming the allowed keys and values for anything else."""
    if not isinstance(given, dict):
        raise ValueError(f"{what} must be a dict such as {{'activation': ['sigmoid']}}")
    out = {}
    for key, values in given.items():
        if key not in SETTINGS:
            raise ValueError(f"{what}: unknown setting {key!r}; allowed: {', '.join(SETTINGS)}")
        values = (values,) if isinstance(values, str) else tuple(values)
        wrong = [v for v in values if v not in SETTINGS[key]]
        if wrong or not values:
            raise ValueError(
                f"{what}: {key} cannot be {', '.join(map(repr, wrong)) or 'empty'}; "
                f"allowed: {', '.join(SETTINGS[key])}"
            )
        out[key] = values
    return out


def declared_support(cls) -> dict[str, tuple[str, ...]] | None:
    """What a class declares it supports, e.g.

        supports = {"activation": ["sigmoid"], "output": ["sigmoid"], "loss": ["mse"],
                    "optimizer": ["sgd"], "dtype": ["float64", "float32"]}

    (a setting left out: every value). None when the class declares nothing."""
    given = getattr(cls, "supports", None)
    return None if given is None else check_settings(given, f"{cls.__name__}.supports")


def matches(case: Case, settings: dict[str, tuple[str, ...]] | None) -> bool:
    return not settings or all(case.setting(k) in v for k, v in settings.items())


def select(options: dict | None = None, supports: dict | None = None):
    """(cases to check, how many the options left out, how many the declaration left out)."""
    narrowed = [c for c in all_cases() if matches(c, options)]
    kept = [c for c in narrowed if matches(c, supports)]
    return kept, len(all_cases()) - len(narrowed), len(narrowed) - len(kept)
