"""How precisely a cell's epoch time is known: the median's confidence interval.

A cell's time is the median of its steady epochs. The median's 95% interval comes from order
statistics alone (the binomial argument: the true median lies between the k-th smallest and
the k-th largest of n samples with probability 1 - 2 P(Bin(n, 1/2) <= k - 1)), so it holds
whatever the shape of the epochs' distribution, outlying epochs included.

A time is *precise* when that interval is at most PRECISION wide relative to the median. The
worker uses this to decide how many extra timing epochs a cell needs (bench.worker.measure);
the report uses it to decide which cells a wide spread of epochs leaves uncertain
(bench.report.ratios). Pure Python and NumPy: both layers import it.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

LEVEL = 0.95  # the intervals' confidence level
# A cell's median epoch time is "precise" when its 95% interval is at most this wide relative
# to the median (about ±5%): ratios of two precise cells are settled to about 10%.
PRECISION = 0.10


def positive_finite(values) -> np.ndarray:
    """The finite, positive values of `values` as float64 (times that can be logged); values
    that are not numbers are left out."""
    out = []
    for v in np.ravel(np.asarray(values, dtype=object)):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            continue
    a = np.asarray(out, dtype=np.float64)
    return a[np.isfinite(a) & (a > 0)]


@lru_cache(maxsize=4096)
def median_depth(n: int, level: float = LEVEL) -> int:
    """The largest k with P(Bin(n, 1/2) <= k - 1) <= (1 - level) / 2; 0 when no k reaches the
    level (fewer than 6 samples at 95%)."""
    alpha, cdf, k = (1 - level) / 2, 0.0, 0
    log_total = math.lgamma(n + 1) - n * math.log(2)
    for j in range(n // 2 + 1):  # in logs: exact enough, and no overflow at 20000 epochs
        cdf += math.exp(log_total - math.lgamma(j + 1) - math.lgamma(n - j + 1))
        if cdf > alpha:
            break
        k = j + 1
    return min(k, n // 2)


def median_interval(times, level: float = LEVEL) -> tuple[float, float, float]:
    """(median, lo, hi) of `times`: lo and hi the distribution-free interval of the median
    (the k-th smallest and the k-th largest, k = median_depth); NaN bounds when the samples
    are too few for the level."""
    x = np.sort(positive_finite(times))
    if not len(x):
        return math.nan, math.nan, math.nan
    n, med = len(x), float(np.median(x))
    k = median_depth(n, level)
    if k < 1:
        return med, math.nan, math.nan
    return med, float(x[k - 1]), float(x[n - k])


def is_precise(times, precision: float = PRECISION) -> bool:
    """Whether the median of `times` is known to within `precision` of itself (95%)."""
    med, lo, hi = median_interval(times)
    return bool(med > 0 and math.isfinite(lo) and math.isfinite(hi) and hi - lo <= precision * med)
