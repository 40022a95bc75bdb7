"""Trial-level statistics on synthetic runs: drift and steps, interleaved or not."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from bench.comparison import verdict
from bench.schedule import rmit_order
from bench.stats import ratio_test, trial_interval
from bench.timing import TimingPolicy

TRIALS = TimingPolicy().trials  # the default a user gets


def _machine(kind: str, position: float) -> float:
    """The machine's slowdown factor at `position` (0..1) of the run."""
    if kind == "drift":
        return 1.0 + 0.5 * position
    if kind == "step":
        return 1.0 if position < 0.5 else 1.5
    return 1.0


def _simulate(true_us: dict[str, float], trials: int, kind: str, seed: int, interleave: bool,
              noise: float = 0.05) -> dict[str, list[float]]:  # fmt: skip
    """Trial medians of each cell over one run on a machine that changes as `kind` says."""
    rng = np.random.default_rng(seed)
    cells = list(true_us)
    if interleave:
        order = rmit_order(cells, trials, random.Random(seed))
    else:
        order = [c for c in cells for _ in range(trials)]  # one cell after another
    medians: dict[str, list[float]] = {c: [] for c in cells}
    for slot, cell in enumerate(order):
        factor = _machine(kind, slot / len(order))
        medians[cell].append(true_us[cell] * factor * float(rng.lognormal(0, noise)))
    return medians


@pytest.mark.parametrize("kind", ["drift", "step"])
def test_interleaved_twins_show_no_difference_under_drift_or_step(kind: str) -> None:
    alarms = 0
    for seed in range(300):
        m = _simulate({"A": 100.0, "B": 100.0}, TRIALS, kind, seed, interleave=True)
        alarms += verdict(ratio_test(m["A"], m["B"])) in ("slower", "faster")
    assert alarms / 300 <= 0.03  # alpha is 1%; drift inflates the spread, not the bias


def test_sequential_twins_across_a_step_are_falsely_different() -> None:
    """The same statistics on cells run one after the other: the trap interleaving avoids."""
    alarms = 0
    for seed in range(100):
        m = _simulate({"A": 100.0, "B": 100.0}, TRIALS, "step", seed, interleave=False)
        alarms += verdict(ratio_test(m["A"], m["B"])) in ("slower", "faster")
    assert alarms / 100 >= 0.9


def test_a_twenty_percent_difference_under_five_percent_noise_is_found() -> None:
    found = 0
    for seed in range(300):
        m = _simulate({"A": 100.0, "B": 120.0}, TRIALS, "none", seed, interleave=True)
        test = ratio_test(m["A"], m["B"])
        found += verdict(test) == "slower"
    assert found / 300 >= 0.9


@pytest.mark.parametrize("kind", ["drift", "step", "none"])
def test_trial_interval_covers_the_true_median_under_drift(kind: str) -> None:
    """The true median of a cell over the run: its value times the machine's geometric-mean
    factor over the run's span (what a cell sampled uniformly over the run converges to)."""
    grid = np.linspace(0, 1, 10001)
    truth = 100.0 * math.exp(float(np.mean(np.log([_machine(kind, x) for x in grid]))))
    covered = 0
    draws = 1000
    for seed in range(draws):
        m = _simulate({"A": 100.0, "B": 90.0, "C": 110.0}, TRIALS, kind, seed, interleave=True)
        _, low, high = trial_interval(m["A"])
        covered += low <= truth <= high
    assert covered / draws >= 0.90


def test_one_trial_has_no_trial_interval() -> None:
    assert trial_interval([42.0]) == (pytest.approx(42.0), None, None)
    assert ratio_test([1.0], [1.0, 2.0]) is None


def test_rmit_order_runs_every_cell_once_per_round_and_is_seeded() -> None:
    order = rmit_order(["a", "b", "c"], 4, random.Random(7))
    assert [sorted(order[i : i + 3]) for i in range(0, 12, 3)] == [["a", "b", "c"]] * 4
    assert order == rmit_order(["a", "b", "c"], 4, random.Random(7))
    assert order != rmit_order(["a", "b", "c"], 4, random.Random(8))


def test_detectable_change_matches_the_comparison_it_predicts() -> None:
    from bench.stats import detectable_change

    change = detectable_change(0.05, 8)
    assert change == pytest.approx(math.expm1((2.977 + 0.868) * 0.05 * math.sqrt(2 / 8)), rel=1e-3)
    assert detectable_change(0.05, 1) is None
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(0, 0.05, 8), rng.lognormal(0, 0.05, 8)
    # the comparison's own estimate uses the measured spreads: the same order of size
    assert 0.3 * change < ratio_test(a, b).mde < 3 * change
