from __future__ import annotations

import math
import time

import numpy as np
import pytest

from bench.stats import median_ci, median_ci_ranks, summarize, unreliable_percentiles
from bench.timing import TimingPolicy, measure


def test_summary_of_known_samples() -> None:
    samples = [float(v) for v in range(1, 101)]  # 1..100 µs
    s = summarize(samples, items_per_call=4)
    assert s["n"] == 100
    assert s["min_us"] == 1.0 and s["max_us"] == 100.0
    assert s["mean_us"] == pytest.approx(50.5)
    assert s["p50_us"] == pytest.approx(50.5)
    assert s["p90_us"] == pytest.approx(90.1)  # numpy linear (type 7)
    assert s["p99_us"] == pytest.approx(99.01)
    assert s["std_us"] == pytest.approx(np.std(samples, ddof=1))
    assert s["throughput_items_per_s"] == pytest.approx(4 / 50.5e-6)
    assert s["iqr_over_median"] == pytest.approx((75.25 - 25.75) / 50.5)


def test_median_ci_ranks_exact_for_small_n() -> None:
    # For n = 10 the classic 95% interval is [x(2), x(9)] (1-based), coverage 97.9%.
    assert median_ci_ranks(10) == (1, 8)
    assert median_ci_ranks(5) is None  # 2 * 0.5**5 = 6.25% > 5%: no 95% interval exists
    low, high = median_ci_ranks(100)
    assert (low, high) == (39, 60)  # x(40)..x(61), the textbook ranks


def test_median_ci_covers_true_median_at_stated_rate() -> None:
    rng = np.random.default_rng(1234)
    true_median = math.log(2)  # exponential(1)
    draws, covered = 2000, 0
    for _ in range(draws):
        low, high = median_ci(rng.exponential(1.0, size=41))
        covered += low <= true_median <= high
    rate = covered / draws
    assert 0.93 <= rate <= 0.985  # exact binomial ranks give >= 95%, a little above


def test_large_n_uses_normal_approximation_and_stays_ordered() -> None:
    low, high = median_ci_ranks(100_000)
    assert 0 < low < 50_000 < high < 100_000
    assert high - low == pytest.approx(1.96 * math.sqrt(100_000), abs=4)


def test_tail_percentiles_flagged_with_too_few_samples() -> None:
    assert unreliable_percentiles(50) == [90, 95, 99]
    assert unreliable_percentiles(199) == [95, 99]  # 199 * 5% < 10
    assert unreliable_percentiles(200) == [99]
    assert unreliable_percentiles(1000) == []


def _busy(iterations: int = 2000) -> None:
    total = 0
    for i in range(iterations):
        total += i


def test_measure_stops_early_when_ci_target_met() -> None:
    policy = TimingPolicy(warmup_iters=5, warmup_time=0, min_iters=30, min_time=0.05,
                          max_time=20, target_ci=0.05)  # fmt: skip
    m = measure(_busy, policy)
    assert m.stop_reason == "target_ci" and m.ci_met
    assert len(m.samples_ns) >= 30
    assert m.wall_s < 20


def test_measure_runs_to_max_time_when_ci_cannot_be_met() -> None:
    rng = np.random.default_rng(0)

    def jittery() -> None:  # latencies spread over two orders of magnitude
        time.sleep(float(rng.choice([0.0, 0.002])))

    policy = TimingPolicy(warmup_iters=0, warmup_time=0, min_iters=5, min_time=0.05,
                          max_time=0.3, target_ci=0.001)  # fmt: skip
    m = measure(jittery, policy)
    assert m.stop_reason == "max_time" and not m.ci_met
    assert m.wall_s >= 0.3


def test_measure_honours_minimums_with_target_zero() -> None:
    policy = TimingPolicy(warmup_iters=3, warmup_time=0, min_iters=25, min_time=0,
                          max_time=5, target_ci=0)  # fmt: skip
    m = measure(_busy, policy)
    assert m.stop_reason == "min_reached"
    assert len(m.samples_ns) == 25 and m.warmup_iters == 3


def test_cpu_load_of_other_processes_is_a_fraction() -> None:
    from bench.timing import CpuLoad

    load = CpuLoad()
    _busy(200_000)
    fraction = load.other_fraction()
    assert fraction is None or 0.0 <= fraction <= 1.0


def test_stability_warnings_name_their_cause() -> None:
    from bench.runner import stability_warnings

    timed = {"n": 100, "iqr_over_median": 0.3, "ci_met": False, "ci95_rel_halfwidth": 0.05,
             "unreliable_percentiles": [99], "other_cpu_fraction": 0.6}  # fmt: skip
    warnings = stability_warnings(timed, target_ci=0.02, governor="powersave")
    assert any("IQR/median 30%" in w for w in warnings)
    assert any("±5.0% missed the ±2.0% target" in w for w in warnings)
    assert any("p99" in w for w in warnings)
    assert any("other processes used 60%" in w for w in warnings)
    assert any("'powersave'" in w for w in warnings)
    calm = {"n": 5000, "iqr_over_median": 0.01, "ci_met": True, "unreliable_percentiles": [],
            "other_cpu_fraction": 0.01}  # fmt: skip
    assert stability_warnings(calm, target_ci=0.02, governor="performance") == []
