"""How often a shortened part evaluates: a preset's eval_every fits its own epochs, and
`--epochs` alone would leave its learning curve a single point."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

MIN_CURVE_POINTS = 5  # fewer evaluations than this and a learning curve says little
CURVE_POINTS = 10  # what a shortened part's eval_every is brought down to give


def curve_eval_every(
    eval_every: int, epochs: Sequence[int], part: str, note: Callable[[str], None] | None
) -> int:
    """The eval_every a part keeps when the command line shortens its epochs.

    A preset's eval_every fits its own epochs (seed004 evaluates every 1000 of 20000); with
    `--epochs 50` it would leave one point, the last epoch. Where the shortest run of the
    part would get fewer than MIN_CURVE_POINTS evaluations, eval_every becomes
    shortest // CURVE_POINTS (at least 1) and `note` says so: the person shortened the run,
    not its curve. An --eval-every given with --epochs is kept as given.
    """
    shortest = min(epochs)
    if shortest // eval_every >= MIN_CURVE_POINTS:
        return eval_every
    adjusted = max(1, shortest // CURVE_POINTS)
    if adjusted >= eval_every:
        return eval_every
    (note or (lambda text: print(text, file=sys.stderr)))(
        f"note: part {part!r}: eval_every {eval_every} leaves "
        f"{shortest // eval_every} curve point(s) in {shortest} epochs; evaluating every "
        f"{adjusted} epoch(s) instead (give --eval-every to choose)"
    )
    return adjusted
