"""`bench run --shard I/N`: a deterministic part of the grid, balanced by expected cost.

Cost model (milliseconds, integers, so every machine and Python hash seed computes the same
assignment): a cell that will be skipped (a precision its backend lacks, a batch size its
model's inputs do not carry) costs 1. Any other cell costs a fixed 500 for loading and the
parity checks, plus `warmup_time` (spent on a cell's first trial only) and `trials` timed
loops, twice when end-to-end latency is timed too. A timed loop lasts at least `min_time` and at least `min_iters` inferences; an
inference is estimated at 5 ns per input element (every input's elements at the cell's batch
size and dimensions) on ONNX runtimes and 10 ns on backends that run the PyTorch module.
What counts is that larger batches and larger inputs cost more, not the absolute figure.

Assignment is longest processing time first: cells sorted by cost (largest first, ties by
cell id), each given to the shard with the smallest total so far (ties: the lowest index).
The largest shard then exceeds the ideal share by at most one cell's cost.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from bench.errors import BenchError
from bench.grid import Cell
from bench.models.spec import ModelSpec
from bench.timing import TimingPolicy

#: Configuration keys that do not change what a sweep measures: they may differ between its
#: shards (each shard writes its own folder and may keep its own export cache).
LOCAL_KEYS = ("shard", "out_dir", "cache_dir")
LOAD_MS = 500
#: At most this many shards: far more than any grid's cells, and the assignment keeps a total
#: per shard (a huge N once took 14 GB before measuring anything).
MAX_SHARDS = 10_000
NS_PER_ELEMENT = {"onnx": 5, "torch": 10}


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` -> (I, N), 1 <= I <= N <= MAX_SHARDS; anything else is a one-line `BenchError`."""
    parts = text.strip().split("/")
    if len(parts) != 2 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        raise BenchError(f"--shard {text!r}: give I/N, the shard's number and the number of "
                         "shards, e.g. --shard 2/3")  # fmt: skip
    index, count = int(parts[0]), int(parts[1])
    if not 1 <= count <= MAX_SHARDS:
        raise BenchError(f"--shard {text!r}: the number of shards N runs from 1 to "
                         f"{MAX_SHARDS}")  # fmt: skip
    if not 1 <= index <= count:
        raise BenchError(f"--shard {text!r}: the shard's number runs from 1 to N (here 1 to "
                         f"{count})")  # fmt: skip
    return index, count


def input_elements(spec: ModelSpec, cell: Cell) -> int:
    """Elements of every input of one inference of `cell` (unknown dimensions count 1)."""
    sizes = cell.sizes
    return sum(
        math.prod(sizes.get(d, 1) if isinstance(d, str) else d for d in i.shape)
        for i in spec.inputs
    )


def cell_cost(
    elements: int, consumes: str, timing: TimingPolicy, end_to_end: bool, runs: bool = True
) -> int:
    """Expected milliseconds of one cell (the module docstring's model)."""
    if not runs:
        return 1
    inference_s = elements * NS_PER_ELEMENT.get(consumes, 10) * 1e-9
    loop_s = max(timing.min_time, timing.min_iters * inference_s)
    timed_s = timing.trials * loop_s * (2 if end_to_end else 1)
    return LOAD_MS + round((timing.warmup_time + timed_s) * 1000)


def assign(cells: Sequence[Cell], cost: Callable[[Cell], int], count: int) -> list[list[Cell]]:
    """The cells of each of `count` shards (longest processing time first), each in grid order."""
    order = {c.cell_id: i for i, c in enumerate(cells)}
    heap = [(0, index) for index in range(count)]
    shards: list[list[Cell]] = [[] for _ in range(count)]
    for cell in sorted(cells, key=lambda c: (-cost(c), c.cell_id)):
        load, index = heapq.heappop(heap)
        shards[index].append(cell)
        heapq.heappush(heap, (load + cost(cell), index))
    return [sorted(part, key=lambda c: order[c.cell_id]) for part in shards]


def sweep_id(config: dict[str, Any]) -> str:
    """A hash of a saved configuration without its local keys: equal for every shard of one
    sweep, different for any other sweep."""
    shared = {k: v for k, v in config.items() if k not in LOCAL_KEYS}
    text = json.dumps(shared, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
