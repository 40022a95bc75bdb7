"""The valid range of every number a flag or a config value can take, and the one-line checks.

Standard library and bench.errors only: the config path and worker processes import it
cheaply. Each check raises `BenchError` naming the flag, the value and the valid range.
"""

from __future__ import annotations

import math
import os

from bench.errors import BenchError

#: Batch sizes and the sizes of named dimensions (`--batch-sizes`, `--dims`, `--shape`).
MAX_BATCH = 65536
#: `--trials`: a run's schedule holds trials x cells entries.
MAX_TRIALS = 1000
#: `--min-iters`, `--warmup-iters`: samples are kept in memory.
MAX_ITERS = 1_000_000
#: Seconds: `--warmup-time`, `--min-time`, `--max-time` (one day).
MAX_SECONDS = 86_400.0
#: `--cell-timeout` seconds (one week).
MAX_TIMEOUT = 7 * 86_400.0
#: `--seed`, `--parity-seeds`: numpy's and random's seeds are unsigned; 32 bits are plenty.
MAX_SEED = 2**32 - 1
#: `--requests` in flight in throughput mode (each holds its own inputs and outputs).
MAX_REQUESTS = 256
#: `--profile-runs`: profiled inferences per cell (each is recorded by the runtime's profiler).
MAX_PROFILE_RUNS = 10_000
#: `--profile-runs` when not given: enough to average out a node's jitter, cheap on the zoo.
DEFAULT_PROFILE_RUNS = 20
#: `--threads`: never more than this, whatever the machine.
MAX_THREADS = 4096
#: `--threads`: at most this many threads per core this process may use.
THREADS_PER_CORE = 4


def cores() -> int:
    """The cores this process may use (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def max_threads() -> int:
    """The most `--threads` this machine takes: 4 per core, at most 4096."""
    return min(MAX_THREADS, THREADS_PER_CORE * cores())


def _text(value: float) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def in_range(
    flag: str,
    value: float,
    low: float,
    high: float | None = None,
    *,
    low_open: bool = False,
    unit: str = "",
) -> None:
    """A one-line error unless `value` is a finite number from `low` (excluded when
    `low_open`) to `high` (no upper end when None)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BenchError(f"{flag} must be a number, got {value!r}")
    if not math.isfinite(value):
        bound = "a finite number"
    elif value < low or (low_open and value == low):
        bound = f"> {_text(low)}" if low_open else f">= {_text(low)}"
    elif high is not None and value > high:
        bound = f"<= {_text(high)}"
    else:
        return
    lowest = f"above {_text(low)}" if low_open else _text(low)
    above = f"> {_text(low)}" if low_open else f">= {_text(low)}"
    valid = f"{lowest} to {_text(high)}" if high is not None else f"a finite number {above}"
    raise BenchError(f"{flag} must be {bound}, got {_text(value)}; valid: {valid}{unit}")


def thread_count(flag: str, value: int) -> None:
    """1 to 4 threads per core this process may use, at most 4096."""
    in_range(flag, value, 1, max_threads(),
             unit=f" ({THREADS_PER_CORE} per core of the {cores()} this process may use)")  # fmt: skip
