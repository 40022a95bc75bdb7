"""Summary statistics: over the raw samples of the loops, and between trials.

Between trials (what intervals, rankings and comparisons use): a cell measured in n trials
has n trial medians. Its estimate is their geometric mean and its 95% interval is Student's t
on their logarithms (`trial_interval`). Why: a trial median already absorbs the outliers
inside its loop, so what is left between trials is the machine's state (frequency, caches,
other tenants), which acts multiplicatively; on the log scale trial medians are close to
normal, and the t interval has its nominal coverage for the small n bench uses (3 to 10)
where bootstrap intervals of a median under-cover (the percentile bootstrap of 5 values
covers about 80%). The tests check coverage under drift and step changes against this
claim. Two cells are compared with Welch's t test on the log trial medians (scipy.stats),
and the smallest change a comparison could detect (`RatioTest.mde`) comes from the same
standard error at the chosen alpha and power.

Within a loop (reported, never used to call a difference):

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
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats as sps

#: Raw samples: a sequence of floats, or a float array.
Samples = Sequence[float] | np.ndarray

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


def median_ci(samples: Samples, confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the median, or None with too few samples."""
    ranks = median_ci_ranks(len(samples), confidence)
    if ranks is None:
        return None
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    return float(ordered[ranks[0]]), float(ordered[ranks[1]])


def ci_relative_halfwidth(samples: Samples, confidence: float = 0.95) -> float:
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
) -> dict[str, float | int | list | None]:
    """Latency statistics (µs) and throughput (items/s, from the median) of raw samples."""
    values = np.asarray(samples_us, dtype=np.float64)
    n = int(values.size)
    if n == 0:
        return {"n": 0}
    p = np.percentile(values, PERCENTILES)
    median = float(p[0])
    q1, q3 = np.percentile(values, [25, 75])
    interval = median_ci(values)
    stats: dict[str, float | int | list | None] = {
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


def trial_interval(
    trial_medians: Sequence[float], confidence: float = 0.95
) -> tuple[float, float | None, float | None]:
    """(estimate, low, high): geometric mean of the trial medians and Student's t interval on
    their logs. With one trial there is no interval between trials: (median, None, None)."""
    logs = np.log(np.asarray(trial_medians, dtype=np.float64))
    n = int(logs.size)
    if n == 0:
        raise ValueError("no trials")
    center = float(np.exp(logs.mean()))
    if n < 2:
        return center, None, None
    half = float(sps.t.ppf(0.5 + confidence / 2.0, n - 1)) * float(logs.std(ddof=1)) / math.sqrt(n)
    return center, float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half))


@dataclass(frozen=True)
class RatioTest:
    """other / base on the trial level: the ratio of geometric means, its interval, Welch's
    p-value and the minimum detectable effect (relative, e.g. 0.05 = 5%)."""

    ratio: float
    low: float
    high: float
    p_value: float
    mde: float
    log_se: float
    df: float

    def relative_to(self, control: RatioTest, alpha: float, power: float) -> RatioTest:
        """This ratio divided by a control workload's ratio (the machine's own drift); the
        standard errors add in quadrature, degrees of freedom the smaller of the two."""
        log_ratio = math.log(self.ratio) - math.log(control.ratio)
        se = math.hypot(self.log_se, control.log_se)
        return _from_log(log_ratio, se, min(self.df, control.df), alpha, power)


def _exp(x: float) -> float:
    """exp that says inf where the float range ends (a hostile record's huge medians)."""
    return math.exp(x) if x < 709.0 else math.inf


def _from_log(log_ratio: float, se: float, df: float, alpha: float, power: float) -> RatioTest:
    if not math.isfinite(se) or not math.isfinite(log_ratio):  # a spread beyond any float
        return RatioTest(_exp(log_ratio), 0.0, math.inf, 1.0, math.inf, math.inf, df)
    if se <= 0:  # every trial alike: any difference is exact
        p = 1.0 if log_ratio == 0 else 0.0
        return RatioTest(_exp(log_ratio), _exp(log_ratio), _exp(log_ratio), p, 0.0, 0.0, df)
    t_crit = float(sps.t.ppf(1 - alpha / 2, df))
    p = float(2 * sps.t.sf(abs(log_ratio) / se, df))
    mde = _exp((t_crit + float(sps.t.ppf(power, df))) * se) - 1.0
    return RatioTest(_exp(log_ratio), _exp(log_ratio - t_crit * se),
                     _exp(log_ratio + t_crit * se), p, mde, se, df)  # fmt: skip


def ratio_test(
    base_medians: Sequence[float],
    other_medians: Sequence[float],
    alpha: float = 0.01,
    power: float = 0.8,
) -> RatioTest | None:
    """Welch's t test on log trial medians (scipy.stats.ttest_ind); None below 2 trials a side."""
    a = np.log(np.asarray(base_medians, dtype=np.float64))
    b = np.log(np.asarray(other_medians, dtype=np.float64))
    if a.size < 2 or b.size < 2:
        return None
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se > 0:
        with warnings.catch_warnings():  # nearly identical trials: scipy's precision note
            warnings.simplefilter("ignore", RuntimeWarning)
            result = sps.ttest_ind(b, a, equal_var=False)
        df = float(result.df)
    else:
        df = float(a.size + b.size - 2)
    return _from_log(float(b.mean() - a.mean()), se, df, alpha, power)


def detectable_change(
    trial_spread: float, n_trials: int, alpha: float = 0.01, power: float = 0.8
) -> float | None:
    """The smallest relative change a comparison of this cell with a run like it could
    detect: two samples of `n_trials` log trial medians with standard deviation
    `trial_spread`, Welch's t at `alpha` and `power`. None below 2 trials."""
    if n_trials < 2 or not math.isfinite(trial_spread):
        return None
    se = trial_spread * math.sqrt(2.0 / n_trials)
    df = 2 * n_trials - 2
    exponent = (float(sps.t.ppf(1 - alpha / 2, df)) + float(sps.t.ppf(power, df))) * se
    return math.expm1(exponent) if exponent < 700 else math.inf  # a spread no run resolves
