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


def test_measure_runs_until_both_minimums() -> None:
    policy = TimingPolicy(warmup_iters=3, warmup_time=0, min_iters=25, min_time=0, max_time=5)
    m = measure(_busy, policy)
    assert len(m.samples_ns) == 25 and m.warmup_iters == 3
    policy = TimingPolicy(warmup_iters=0, warmup_time=0, min_iters=1, min_time=0.05, max_time=5)
    m = measure(_busy, policy)
    assert m.wall_s >= 0.05 and len(m.samples_ns) > 1
    assert m.started_s > 1.6e9  # seconds since the epoch


def test_measure_stops_at_max_time_before_min_iters() -> None:
    policy = TimingPolicy(warmup_iters=0, warmup_time=0, min_iters=10**9, min_time=0, max_time=0.1)
    m = measure(lambda: time.sleep(0.01), policy)
    assert 0.1 <= m.wall_s < 1.0 and len(m.samples_ns) < 20


def test_cpu_load_of_other_processes_is_a_fraction() -> None:
    from bench.timing import CpuLoad

    load = CpuLoad()
    _busy(200_000)
    fraction = load.other_fraction()
    assert fraction is None or 0.0 <= fraction <= 1.0


def test_stability_warnings_name_their_cause() -> None:
    from bench.judge import stability_warnings

    timed = {"n": 100, "jitter_rel": 0.3, "trial_spread": 0.2, "n_trials": 5,
             "contended_trials": 2, "unreliable_percentiles": [99], "interval_scope": "trials"}  # fmt: skip
    warnings = stability_warnings(timed, governor="powersave")
    assert any("IQR/median inside the loops 30%" in w for w in warnings)
    assert any("trial medians spread 20%" in w for w in warnings)
    assert any("p99" in w for w in warnings)
    assert any("during 2 of 5 trials" in w and "contended" in w for w in warnings)
    assert any("'powersave'" in w for w in warnings)
    assert any("one loop" in w for w in stability_warnings({"n": 9, "interval_scope": "loop"}))
    calm = {"n": 5000, "jitter_rel": 0.01, "trial_spread": 0.02, "n_trials": 8,
            "contended_trials": 0, "unreliable_percentiles": [], "interval_scope": "trials"}  # fmt: skip
    assert stability_warnings(calm, governor="performance") == []


def test_timing_block_pools_used_trials_and_keeps_every_sample() -> None:
    from bench.judge import Trial, timing_block
    from bench.timing import Measurement

    def trial(index: int, us: float, other: float = 0.0, used: bool = True) -> Trial:
        samples = [int(us * 1e3)] * 20
        return Trial(index, Measurement(samples, 3, 0.2, 1000.0 + index, other), used)

    trials = [trial(0, 10.0), trial(1, 40.0, other=0.9, used=False), trial(2, 10.0),
              trial(3, 12.0), trial(4, 11.0, other=0.5)]  # fmt: skip
    block = timing_block(trials, items_per_sample=4, run_start_s=1000.0)
    assert block["n_trials"] == 4 and block["retried_trials"] == 1
    assert block["contended_trials"] == 1  # the kept one at 50%; the replaced one not counted
    assert len(block["samples_us"]) == 100 and block["n"] == 80
    assert block["trials"][1]["offset"] == 20 and block["trials"][1]["used"] is False
    assert block["trials"][2]["start_s"] == 2.0
    assert block["center_us"] == pytest.approx((10 * 10 * 12 * 11) ** 0.25)
    assert block["ci95_low_us"] < block["center_us"] < block["ci95_high_us"]
    assert block["interval_scope"] == "trials" and block["max_us"] == 12.0
    assert block["throughput_items_per_s"] == pytest.approx(4 / (block["center_us"] * 1e-6))


def test_only_a_cells_first_trial_spends_the_warmup_time() -> None:
    """Later trials of a loaded cell warm up with `warmup_iters` calls only; the first one
    (and the first after the cell is unloaded and loaded again) spends `warmup_time` too."""
    from bench.backends.base import LoadSpec
    from bench.jobs import LoadJob, TrialJob
    from bench.worker import CellHost

    class Slow:
        def run(self) -> None:
            time.sleep(0.001)

    host = CellHost()
    policy = TimingPolicy(warmup_iters=3, warmup_time=0.05, min_iters=2, min_time=0.0)
    host.loaded["c"] = (Slow(), LoadJob("c", "unused", LoadSpec(source=""), [{}]))  # type: ignore[assignment]
    first = host.trial(TrialJob("c", policy, end_to_end=False)).inference
    later = host.trial(TrialJob("c", policy, end_to_end=False)).inference
    assert first is not None and later is not None
    assert first.warmup_iters > 10  # 0.05 s of 1 ms calls
    assert later.warmup_iters == 3
    host.trialled.discard("c")  # as after an unload
    again = host.trial(TrialJob("c", policy, end_to_end=False)).inference
    assert again is not None and again.warmup_iters > 10


def test_a_loop_too_short_to_read_takes_the_trials_cpu_load() -> None:
    """Loops under CpuLoad.MIN_WINDOW_S read no CPU share of their own (the default 0.05 s
    loops); the trial's whole window then stands in, so contention is still seen."""
    from bench.jobs import TrialOutcome
    from bench.timing import Measurement
    from bench.worker import with_trial_load

    short = Measurement([1000], 5, 0.05, 0.0, None)
    own = Measurement([1000], 5, 0.2, 0.0, 0.05)
    outcome = with_trial_load(TrialOutcome(inference=short, end_to_end=own), 0.6)
    assert outcome.inference is not None and outcome.inference.other_cpu_fraction == 0.6
    assert outcome.end_to_end is not None and outcome.end_to_end.other_cpu_fraction == 0.05
