"""Summary statistics over raw latency samples.

Percentiles use numpy's default "linear" method (Hyndman & Fan type 7). The 95% confidence
interval of the median comes from order statistics (distribution-free): the interval between
the j-th and (n-j+1)-th smallest samples covers the true median with probability
P(j <= B < n-j+1), B ~ Binomial(n, 1/2); exact for n <= 2000, normal approximation above.

A tail percentile p is flagged unreliable when fewer than `TAIL_MIN_BEYOND` samples lie beyond
it (n * (1 - p) < 10): the same reasoning as MLPerf LoadGen's minimum query counts, which
size a run so that enough observations fall past the percentile for its estimate to hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

PERCENTILES = (50, 90, 95, 99)
TAIL_MIN_BEYOND = 10
_Z = {0.90: 1.6449, 0.95: 1.9600, 0.99: 2.5758}


@lru_cache(maxsize=4096)
def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """0-based (low, high) indices into the sorted samples, or None if n is too small."""
    alpha = 1.0 - confidence
    if n > 2000:
        z = _Z.get(round(confidence, 2), 1.96)
        half = z * math.sqrt(n) / 2.0
        low = max(math.floor(n / 2.0 - half) - 1, 0)
        high = min(math.ceil(n / 2.0 + half), n - 1)
        return low, high
    log_half_n = n * math.log(0.5)
    cdf = 0.0
    j = 0  # number of samples below the interval's lower end
    for k in range(n + 1):
        pmf = math.exp(
            math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n
        )
        if cdf + pmf > alpha / 2.0:
            break
        cdf += pmf
        j = k + 1
    if j == 0:
        return None
    return j - 1, n - j


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the median, or None with too few samples."""
    ranks = median_ci_ranks(len(samples), confidence)
    if ranks is None:
        return None
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    return float(ordered[ranks[0]]), float(ordered[ranks[1]])


def ci_relative_halfwidth(samples: Sequence[float], confidence: float = 0.95) -> float:
    """Half the CI width of the median over the median; inf when it cannot be computed."""
    interval = median_ci(samples, confidence)
    median = float(np.median(samples)) if len(samples) else 0.0
    if interval is None or median <= 0:
        return math.inf
    return (interval[1] - interval[0]) / 2.0 / median


def unreliable_percentiles(n: int, percentiles: Sequence[int] = PERCENTILES) -> list[int]:
    """Percentiles with fewer than TAIL_MIN_BEYOND samples beyond them."""
    return [p for p in percentiles if p > 50 and n * (1 - p / 100.0) < TAIL_MIN_BEYOND]


def summarize(
    samples_us: Sequence[float], items_per_call: int = 1
) -> dict[str, float | int | list]:
    """Latency statistics (µs) and throughput (items/s, from the median) of raw samples."""
    values = np.asarray(samples_us, dtype=np.float64)
    n = int(values.size)
    if n == 0:
        return {"n": 0}
    p = np.percentile(values, PERCENTILES)
    median = float(p[0])
    q1, q3 = np.percentile(values, [25, 75])
    interval = median_ci(values)
    stats: dict[str, float | int | list] = {
        "n": n,
        "min_us": float(values.min()),
        "mean_us": float(values.mean()),
        "std_us": float(values.std(ddof=1)) if n > 1 else 0.0,
        **{f"p{q}_us": float(v) for q, v in zip(PERCENTILES, p, strict=True)},
        "max_us": float(values.max()),
        "ci95_low_us": interval[0] if interval else None,
        "ci95_high_us": interval[1] if interval else None,
        "ci95_rel_halfwidth": ci_relative_halfwidth(values) if interval else None,
        "cv": float(values.std(ddof=1) / values.mean()) if n > 1 and values.mean() > 0 else 0.0,
        "iqr_over_median": float((q3 - q1) / median) if median > 0 else 0.0,
        "throughput_items_per_s": items_per_call / (median * 1e-6) if median > 0 else None,
        "unreliable_percentiles": unreliable_percentiles(n),
    }
    return stats
