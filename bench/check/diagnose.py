"""What a difference in one update means: when the class's step is the contract's times a
constant, the factor is tested against the conventions hand-written MLPs commonly follow (the
batch size, n_out, n_out/2, 2, ½ and their products) and the one it matches is named, with the
conversion (docs/plugins.md lists them)."""

from __future__ import annotations

import numpy as np

RELATIVE = 1e-3  # a factor matches a convention within this relative difference


def _output_conventions(loss: str, n_out: int):
    """(factor, cause, fix) of the quadratic cost's (and bce's) per-output conventions."""
    half = (
        '½Σ over the outputs (Nielsen\'s cost); declare conventions = {"mse": "half-sum"} '
        "or pass lr × 2/n_out"
        if loss == "mse"
        else "½Σ over the outputs; pass lr × 2/n_out"
    )
    return [
        (n_out / 2, f"n_out/2 = {n_out / 2:g}", half),
        (
            n_out,
            f"n_out = {n_out}",
            "the loss summed over the outputs, not averaged; pass lr / n_out",
        ),
        (0.5, "½", "½ in the quadratic cost averaged over the outputs; pass lr × 2"),
        (2.0, "2", "twice the contract's step (a doubled lr or gradient); pass lr / 2"),
    ]


def candidates(loss: str, n_out: int, batch: int) -> list[tuple[float, str, str]]:
    """Every (factor, its name, cause and conversion) tried; the batch's conventions alone and
    times each per-output one."""
    summed = (
        batch,
        f"the batch size {batch}",
        "the loss summed over the batch, not averaged; declare conventions = "
        '{"loss_over_batch": "sum"} or pass lr / batch_size',
    )
    found = [summed] if batch > 1 else []
    for factor, name, cause in _output_conventions(loss, n_out):
        found.append((factor, name, cause))
        if batch > 1:
            found.append(
                (factor * batch, f"{name} × the batch size {batch}", f"{cause}; and {summed[2]}")
            )
    inverse = [
        (
            1 / factor,
            f"1/({name})",
            "the inverse: a conversion the class's code does not need (a convention declared "
            "that it does not follow, or an lr divided twice?)",
        )
        for factor, name, _ in found
        if factor > 2
    ]
    return found + inverse


def name_factor(factor: float, loss: str, n_out: int, batch: int) -> str | None:
    """The convention(s) `factor` matches, as one sentence; None if none does."""
    hits = [
        (name, cause)
        for value, name, cause in candidates(loss, n_out, batch)
        if abs(factor - value) <= RELATIVE * value
    ]
    if not hits:
        return None
    if len(hits) == 1:
        return f"your step is {hits[0][0]}× the contract's: {hits[0][1]}"
    text = " or ".join(f"{name}, {cause}" for name, cause in hits)
    return f"your step is {factor:.4g}× the contract's: {text}"


def step_factor(before, yours, ref) -> float | None:
    """The constant c with (yours - before) = c (ref - before) over every array given, or None
    when the two updates are not proportional (or the reference did not move)."""
    u_yours = np.concatenate([(np.asarray(y, float) - b).ravel() for b, y in zip(before, yours)])
    u_ref = np.concatenate([(np.asarray(r, float) - b).ravel() for b, r in zip(before, ref)])
    size = np.abs(u_ref).max() if u_ref.size else 0.0
    if not size or not np.isfinite(u_yours).all():
        return None
    scale = float(u_yours @ u_ref / (u_ref @ u_ref))
    if scale <= 0 or np.abs(u_yours - scale * u_ref).max() > RELATIVE * scale * size:
        return None
    return scale


def update_hint(before, yours, ref, loss: str, n_out: int, batch: int, explain=True) -> str:
    """What the class's update of one array (or of all, given as lists) looks like next to the
    reference's; with `explain`, a constant factor is named with the convention it matches."""
    if not isinstance(before, list):
        before, yours, ref = [before], [yours], [ref]
    u_ref = max(np.abs(np.asarray(r, float) - b).max() for b, r in zip(before, ref))
    if u_ref == 0:
        return "numpy-vec did not change it"
    u_yours = max(np.abs(np.asarray(y, float) - b).max() for b, y in zip(before, yours))
    if not np.isfinite(u_yours):
        return "yours holds NaN or inf"
    if u_yours <= 1e-3 * u_ref:
        return "yours did not change: is its gradient missing?"
    factor = step_factor(before, yours, ref)
    if factor is None:
        return "yours moved in another direction"
    named = explain and name_factor(factor, loss, n_out, batch)
    return named or f"yours moved {factor:.4g}× as far, in the same direction"
