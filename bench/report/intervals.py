"""Confidence intervals on timing ratios, and the samples they are computed from.

Every speed question is a ratio of two cells' times (a backend against the reference, a run
against an earlier one). The ratio is estimated on the log scale, where a multiplicative
slow-down of the machine is a shift:

- unpaired samples (each cell's steady epochs, or its repeats' medians when each side has at
  least MIN_REPEATS repeats): the Hodges-Lehmann estimate of the shift between the two
  log-samples (the median of all pairwise differences) with the distribution-free interval
  that inverts the Mann-Whitney U test (order statistics of the pairwise differences);
- paired rounds (a run with `--interleave`: the backends of one configuration train epoch k
  in turn, so each round gives one log-ratio per pair): the Hodges-Lehmann estimate of the
  log-ratios' centre with the interval that inverts the Wilcoxon signed-rank test (order
  statistics of the Walsh averages).

Both intervals hold their level exactly under their model (a shift of continuous log-times;
log-ratios symmetric about their centre) whatever the distribution's shape, are untouched by
a few outlying epochs, and agree with the Mann-Whitney test `bench compare` reports. With too
few samples for the level (fewer than 4 epochs a side, fewer than 6 rounds) there is no
interval, and callers say so rather than name a winner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from bench.precision import LEVEL
from bench.precision import positive_finite as clean

MIN_REPEATS = 4  # repeats per side from which repeats' medians are compared, not epochs
_EXACT_PAIRS = 10_000  # up to this many pairwise differences the null distribution is exact
_EXACT_ROUNDS = 200


@dataclass(frozen=True)
class Interval:
    """A ratio and its confidence interval; lo and hi are NaN when the samples were too few."""

    ratio: float
    lo: float = math.nan
    hi: float = math.nan
    n: int = 0  # samples on the smaller side (or rounds)
    method: str = "too few"  # "rounds", "epochs", "repeats" or "too few"

    @property
    def known(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    def excludes(self, value: float = 1.0) -> bool:
        return self.known and (self.lo > value or self.hi < value)

    def beyond(self, threshold: float) -> bool:
        """A clear difference: the interval excludes 1 and the ratio is further from 1 than
        `threshold` (0.05: 5%) in the same direction."""
        if not self.excludes(1.0) or not math.isfinite(self.ratio):
            return False
        return self.ratio >= 1 + threshold if self.lo > 1 else self.ratio <= 1 / (1 + threshold)

    def inverse(self) -> Interval:
        return Interval(1 / self.ratio, 1 / self.hi, 1 / self.lo, self.n, self.method)

    def text(self) -> str:
        """`1.32× [1.28, 1.37]`, or `1.32× (too few samples for an interval)`."""
        if not math.isfinite(self.ratio):
            return "–"
        if not self.known:
            return f"{format_ratio(self.ratio)}× (too few samples for an interval)"
        return f"{format_ratio(self.ratio)}× [{format_ratio(self.lo)}, {format_ratio(self.hi)}]"


def format_ratio(x: float) -> str:
    """Three significant digits, trailing zeros kept: 1.00, 0.509, 12.3."""
    if not math.isfinite(x):
        return "–"
    if 1 <= abs(x) < 10:
        return f"{x:.2f}"
    if 0.1 <= abs(x) < 1:
        return f"{x:.3f}"
    return f"{x:.3g}"


# --------------------------------------------------------------------------- null distributions


@lru_cache(maxsize=4096)
def _mw_counts(n: int, m: int) -> tuple[int, ...]:
    """How many orderings give each value of U for samples of n and m: the coefficients of
    the Gaussian binomial [n+m choose n] in q, as exact integers."""
    poly = [1] + [0] * (n * m)
    for i in range(1, n + 1):
        for u in range(n * m, m + i - 1, -1):  # times (1 - q^(m+i))
            poly[u] -= poly[u - m - i]
        for u in range(i, n * m + 1):  # divided by (1 - q^i)
            poly[u] += poly[u - i]
    return tuple(poly)


@lru_cache(maxsize=1024)
def _sr_counts(n: int) -> tuple[int, ...]:
    """How many sign patterns give each value of the signed-rank statistic for n pairs."""
    top = n * (n + 1) // 2
    poly = [1] + [0] * top
    for k in range(1, n + 1):
        for t in range(top, k - 1, -1):
            poly[t] += poly[t - k]
    return tuple(poly)


def _depth(counts, total_n: int, alpha: float, sd: float) -> int:
    """How many order statistics to step in from each end: the largest c with
    P(statistic <= c - 1) <= alpha / 2 (0: the level cannot be reached)."""
    if counts is None:  # large samples: the normal approximation
        z = stats.norm.ppf(1 - alpha / 2)
        return max(0, int(math.floor(total_n / 2 - z * sd)))
    total = sum(counts)
    cdf, c = 0, 0
    for count in counts:
        cdf += count
        if cdf / total > alpha / 2:
            break
        c += 1
    return c


def mw_depth(n: int, m: int, level: float = LEVEL) -> int:
    counts = _mw_counts(min(n, m), max(n, m)) if n * m <= _EXACT_PAIRS else None
    return _depth(counts, n * m, 1 - level, math.sqrt(n * m * (n + m + 1) / 12))


def sr_depth(n: int, level: float = LEVEL) -> int:
    counts = _sr_counts(n) if n <= _EXACT_ROUNDS else None
    return _depth(counts, n * (n + 1) // 2, 1 - level, math.sqrt(n * (n + 1) * (2 * n + 1) / 24))


# --------------------------------------------------------------------------- intervals


def ratio_interval(num, den, level: float = LEVEL, method: str = "epochs") -> Interval:
    """The ratio of the times `num` to the times `den` (unpaired samples): exp of the
    Hodges-Lehmann shift between their logs, with the interval that inverts the
    Mann-Whitney U test."""
    a, b = np.log(clean(num)), np.log(clean(den))
    if not len(a) or not len(b):
        return Interval(math.nan)
    diffs = np.sort(np.subtract.outer(a, b).ravel())
    ratio = float(np.exp(np.median(diffs)))
    c = mw_depth(len(a), len(b), level)
    if c < 1:
        return Interval(ratio, n=min(len(a), len(b)))
    lo, hi = diffs[c - 1], diffs[len(diffs) - c]
    return Interval(ratio, float(np.exp(lo)), float(np.exp(hi)), min(len(a), len(b)), method)


def paired_interval(log_ratios, level: float = LEVEL) -> Interval:
    """The ratio whose logs are `log_ratios` (one per round): exp of the Hodges-Lehmann
    centre, with the interval that inverts the Wilcoxon signed-rank test."""
    d = np.asarray(log_ratios, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return Interval(math.nan)
    i, j = np.triu_indices(len(d))
    walsh = np.sort((d[i] + d[j]) / 2)
    ratio = float(np.exp(np.median(walsh)))
    c = sr_depth(len(d), level)
    if c < 1:
        return Interval(ratio, n=len(d))
    lo, hi = walsh[c - 1], walsh[len(walsh) - c]
    return Interval(ratio, float(np.exp(lo)), float(np.exp(hi)), len(d), "rounds")


def mann_whitney(a, b, level: float) -> float | None:
    """The two-sided Mann-Whitney U p-value of samples `a` and `b`, or None when their sizes
    cannot reach `level` (the smallest p they allow, 2 / C(n+m, n), is above it)."""
    a, b = clean(a), clean(b)
    if not len(a) or not len(b) or 2 / math.comb(len(a) + len(b), len(a)) > level:
        return None
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
