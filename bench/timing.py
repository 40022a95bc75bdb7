"""The only module that reads the clock (house rule 1).

A cell is measured in several *trials*. A trial is a short warm-up and a timed loop of
`run()` calls on a session that stays loaded between trials; the scheduler interleaves the
trials of every cell of a run in a seeded random order (randomized multiple interleaved
trials), so that a slow phase of the machine falls on every cell alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class TimingPolicy:
    """How many trials, and how long each one warms up and measures.

    A trial warms up until both `warmup_iters` and `warmup_time` are reached (`warmup_time`
    on a cell's first trial only: see `later_trial`), then times
    `run()` call by call until both `min_iters` and `min_time` are reached. `max_time` wins
    over both minimums, in the warm-up and in the timed loop: each stops once `max_time` has
    passed (after the call in flight), so a model slower than `max_time / min_iters` gets
    fewer samples (and fewer warm-up calls) instead of a trial that runs on.
    """

    trials: int = 16
    warmup_iters: int = 5
    warmup_time: float = 0.03
    min_iters: int = 10
    min_time: float = 0.05
    max_time: float = 2.0

    def later_trial(self) -> TimingPolicy:
        """The policy of a cell's later trials in the same worker: the session is loaded and
        has run, so what the warm-up must restore (caches, sleeping thread pools, after other
        cells ran) takes `warmup_iters` calls; `warmup_time` is spent on the first trial only."""
        return replace(self, warmup_time=0.0)


@dataclass(frozen=True)
class Measurement:
    """Raw samples of one timed loop (one trial), when it started and what else ran."""

    samples_ns: list[int]
    warmup_iters: int
    wall_s: float
    started_s: float = 0.0  # seconds since the epoch when the timed loop began
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


def now() -> float:
    """Seconds since the epoch (trial start times, run start)."""
    return time.time()


def measure(run: Callable[[], object], policy: TimingPolicy) -> Measurement:
    """One trial: warm up, then time `run()` call by call under `policy`."""
    clock = time.perf_counter_ns
    warmup_start = clock()
    warmup_deadline = warmup_start + int(policy.warmup_time * 1e9)
    warmup_cutoff = warmup_start + int(policy.max_time * 1e9)  # --max-time wins here too
    warmup_iters = 0
    while warmup_iters < policy.warmup_iters or clock() < warmup_deadline:
        run()
        warmup_iters += 1
        if clock() >= warmup_cutoff:
            break

    samples: list[int] = []
    load = CpuLoad()
    started = time.time()
    start = clock()
    min_ns, max_ns = int(policy.min_time * 1e9), int(policy.max_time * 1e9)
    while True:
        t0 = clock()
        run()
        t1 = clock()
        samples.append(t1 - t0)
        elapsed = t1 - start
        enough = len(samples) >= policy.min_iters and elapsed >= min_ns
        if enough or elapsed >= max_ns:
            return Measurement(samples, warmup_iters, elapsed / 1e9, started, load.other_fraction())
