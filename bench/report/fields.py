"""A record's measurement fields, read the same way for new and old runs.

Runs measured in trials give each timed block (`latency.inference`, `latency.end_to_end`,
`throughput`) `center_us` (the cell's estimate), a 95% interval of it, `interval_scope`
("trials", or "loop" when one trial's loop jitter is all there is), `n_trials`,
`contended_trials` and `trials`; records may be `kind: "control"`. Older runs (and
tests/data) have only `p50_us` and an interval of one loop's median. Everything the reports
show about timing goes through here, so the fallbacks live in one place.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bench.record import BASELINE_BACKEND
from bench.report.format import dims_text, fmt, missing

Record = Mapping[str, Any]
CONTENTION_TEXT = "other processes"


def is_control(record: Record) -> bool:
    """A control workload's record: never a cell of any table, chart or ranking."""
    return record.get("kind", "cell") == "control"


def cell_records(records: Iterable[Record]) -> list[Record]:
    """The records of benchmark cells (control records left out)."""
    return [r for r in records if not is_control(r)]


def timed_block(record: Record, which: str = "inference") -> Mapping[str, Any] | None:
    """`latency.<which>`, or the `throughput` block of a throughput-mode inference."""
    block = (record.get("latency") or {}).get(which)
    if not block and which == "inference":
        block = record.get("throughput")
    return block or None


def center_us(block: Mapping[str, Any] | None) -> float | None:
    """The cell's latency estimate: `center_us`, else the median of the samples."""
    if not block:
        return None
    value = block.get("center_us")
    value = block.get("p50_us") if missing(value) else value
    return None if value is None or missing(value) else float(value)


def interval_us(block: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The 95% interval of `center_us`, or None when the record has none."""
    if not block:
        return None
    low, high = block.get("ci95_low_us"), block.get("ci95_high_us")
    if low is None or high is None or missing(low) or missing(high):
        return None
    return float(low), float(high)


def interval_scope(block: Mapping[str, Any] | None) -> str | None:
    """ "trials" (between-trial variation) or "loop" (one loop's jitter only: too narrow to
    rank or compare with). Records before trials existed measured one loop: "loop"."""
    if not block or interval_us(block) is None:
        return None
    scope = block.get("interval_scope")
    if scope:
        return str(scope)
    return "trials" if (block.get("n_trials") or 1) > 1 else "loop"


def contended_trials(record: Record, name: str = "inference") -> int:
    """Used trials of the record's figure (or of block `name`) during which other processes
    held much of the CPU; at most its trial count (a trial times both of its loops)."""
    return int((timed_block(record, name) or {}).get("contended_trials") or 0)


def contended(record: Record) -> bool:
    """Measured while other processes held the CPU: its numbers carry a caveat."""
    warned = any(CONTENTION_TEXT in str(w) for w in record.get("warnings") or [])
    return warned or contended_trials(record) + contended_trials(record, "end_to_end") > 0


def items_per_s(record: Record) -> float | None:
    """Throughput: wall-clock items/s in throughput mode, else batch size / center."""
    tput = record.get("throughput") or {}
    if not missing(tput.get("items_per_s_wall")):
        return float(tput["items_per_s_wall"])
    block = timed_block(record)
    if not block:
        return None
    if not missing(block.get("center_us")) and block["center_us"] > 0:
        return record["batch_size"] * 1e6 / float(block["center_us"])
    rate = block.get("throughput_items_per_s")
    return None if rate is None or missing(rate) else float(rate)


def items_per_unit(record: Record) -> int:
    """Items one timed unit processes: the batch, times a throughput round's inferences."""
    block = timed_block(record) or {}
    return int(record["batch_size"]) * int(block.get("inferences_per_round") or 1)


def per_item_us(record: Record) -> tuple[float, float | None, float | None] | None:
    """(center, low, high) per item: a latency scaled by the items one timed unit processes
    (batch size, times the inferences of a throughput-mode round), so cells rank by it."""
    block = timed_block(record)
    center = center_us(block)
    if center is None:
        return None
    items = items_per_unit(record)
    interval = interval_us(block)
    low, high = (interval[0] / items, interval[1] / items) if interval else (None, None)
    return center / items, low, high


def graph_sha(record: Record) -> str | None:
    """A hash of the ONNX graph that ignores the opset number (None for older records)."""
    return (record.get("export") or {}).get("graph_sha256") or None


def baseline_key(record: Record) -> tuple:
    """Cells with the same key compare with the same torch baseline (of the same target)."""
    return (record["model"], record["batch_size"], dims_text(record.get("dims")),
            record["precision"], record.get("target"))  # fmt: skip


def backend_label(record: Record) -> str:
    """The backend as reports show it: `ort-cpu @ accel=h200` for a cell of a Ray target."""
    target = record.get("target")
    return f"{record['backend']} @ {target}" if target else str(record["backend"])


def baselines(records: Iterable[Record]) -> dict[tuple, Record]:
    """The torch baseline record that ran `ok` at each key."""
    return {
        baseline_key(r): r
        for r in cell_records(records)
        if r["backend"] == BASELINE_BACKEND and r["status"] == "ok" and items_per_s(r)
    }


def speedup(record: Record, base: Mapping[tuple, Record]) -> tuple[float | None, bool]:
    """Items/s over the torch baseline's (in latency mode, the ratio of centers), and whether
    either side was measured while other processes held the CPU."""
    torch = base.get(baseline_key(record))
    rate = items_per_s(record)
    if torch is None or not rate:
        return None, False
    torch_rate = items_per_s(torch)
    if torch_rate is None:  # never for a record from `baselines`, which needs a rate
        raise TypeError("torch baseline record without a throughput")
    return rate / torch_rate, contended(record) or contended(torch)


def trial_spread(block: Mapping[str, Any] | None) -> float | None:
    """How far a block's trials spread: the standard deviation of the log trial medians (about
    their relative spread), as the runner records it in `trial_spread`; computed from the
    used trials when the block lacks it; None with fewer than two trials."""
    if not block:
        return None
    if not missing(block.get("trial_spread")):
        return float(block["trial_spread"])
    medians = [t["median_us"] for t in block.get("trials") or []
               if t.get("used", True) and t.get("median_us")]  # fmt: skip
    if len(medians) < 2:
        return None
    logs = [math.log(m) for m in medians]
    return statistics.stdev(logs)


def control_lines(records: Sequence[Record]) -> list[str]:
    """One line per control record: "control workload: center X µs [low–high], spread
    between trials Y%" (a machine slowdown moves it; a code change does not)."""
    lines = []
    for record in records:
        if not is_control(record):
            continue
        if record.get("status") != "ok":
            reason = str(record.get("reason") or "no reason recorded").strip().splitlines()
            lines.append(f"control workload {record.get('status')}: {reason[0] if reason else ''}")
            continue
        block = timed_block(record)
        interval = interval_us(block)
        spread = trial_spread(block)
        text = f"control workload: center {fmt(center_us(block))} µs"
        text += f" [{fmt(interval[0])}–{fmt(interval[1])}]" if interval else ""
        text += (
            f", spread between trials {spread:.1%}"
            if spread is not None
            else ", spread between trials: n/a (fewer than two trials)"
        )
        crowded = contended_trials(record)
        if crowded:
            text += (f" ⚠ {crowded} of {(block or {}).get('n_trials')} trials contended (compare "
                     "divides by this figure)")  # fmt: skip
        lines.append(text)
    return lines
