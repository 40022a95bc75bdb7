"""The only module that reads the clock (DESIGN.md rule 1)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bench.stats import ci_relative_halfwidth

T = TypeVar("T")


@dataclass(frozen=True)
class TimingPolicy:
    """How long to warm up and measure.

    Warm-up runs until both `warmup_iters` and `warmup_time` are reached. Measurement runs at
    least `min_iters` and `min_time`; then it stops as soon as the 95% CI of the median is
    within `target_ci` (relative half-width) of the median, or at `max_time`.
    `target_ci=0` stops as soon as the minimums are reached.
    """

    warmup_iters: int = 10
    warmup_time: float = 0.2
    min_iters: int = 50
    min_time: float = 1.0
    max_time: float = 10.0
    target_ci: float = 0.02


@dataclass(frozen=True)
class Measurement:
    """Raw samples of one timed loop, and why it stopped."""

    samples_ns: list[int]
    warmup_iters: int
    stop_reason: str  # "target_ci" | "max_time" | "min_reached"
    ci_met: bool
    wall_s: float
    other_cpu_fraction: float | None = None  # CPU used by other processes, share of all cores


class CpuLoad:
    """How much CPU the rest of the machine used while this process measured (Linux)."""

    MIN_WINDOW_S = 0.1

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as fh:
                fields = [int(v) for v in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # all but idle and iowait
        own = os.times()
        return busy, own.user + own.system, time.monotonic()

    def other_fraction(self) -> float | None:
        end = self._read()
        if self._start is None or end is None:
            return None
        wall = end[2] - self._start[2]
        if wall < self.MIN_WINDOW_S:  # /proc/stat counts in 10 ms ticks: too coarse below
            return None
        other = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return min(1.0, max(0.0, other / (wall * (os.cpu_count() or 1))))


def seconds(fn: Callable[[], T]) -> tuple[T, float]:
    """Call `fn` once; return its result and the wall time in seconds."""
    start = time.perf_counter_ns()
    result = fn()
    return result, (time.perf_counter_ns() - start) / 1e9


def measure(run: Callable[[], object], policy: TimingPolicy) -> Measurement:
    """Warm up, then time `run()` call by call under `policy`."""
    clock = time.perf_counter_ns
    warmup_deadline = clock() + int(policy.warmup_time * 1e9)
    warmup_iters = 0
    while warmup_iters < policy.warmup_iters or clock() < warmup_deadline:
        run()
        warmup_iters += 1

    samples: list[int] = []
    load = CpuLoad()
    start = clock()
    min_ns, max_ns = int(policy.min_time * 1e9), int(policy.max_time * 1e9)
    next_check = policy.min_iters
    while True:
        t0 = clock()
        run()
        t1 = clock()
        samples.append(t1 - t0)
        elapsed = t1 - start
        if len(samples) < policy.min_iters or elapsed < min_ns:
            continue
        if policy.target_ci <= 0:
            return Measurement(
                samples, warmup_iters, "min_reached", True, elapsed / 1e9, load.other_fraction()
            )
        if len(samples) >= next_check:
            # Checking every ~10% of growth keeps the CI's cost off the timed path.
            next_check = int(len(samples) * 1.1) + 1
            if ci_relative_halfwidth(samples) <= policy.target_ci:
                return Measurement(
                    samples, warmup_iters, "target_ci", True, elapsed / 1e9, load.other_fraction()
                )
        if elapsed >= max_ns:
            met = ci_relative_halfwidth(samples) <= policy.target_ci
            return Measurement(
                samples, warmup_iters, "max_time", met, elapsed / 1e9, load.other_fraction()
            )
