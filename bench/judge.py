"""Judging a measured cell: statistics, warnings and parity, as pure functions over what the
worker sent back. Tests call these directly; nothing here reads a clock or a file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.stats import median_ci, summarize, trial_interval
from bench.timing import Measurement

STABILITY_LIMIT = 0.10  # spread between trials or IQR/median inside a loop above this: flagged
BUSY_MACHINE_LIMIT = 0.20  # other processes' share of all cores above this: a contended trial


@dataclass(frozen=True)
class Trial:
    """One timed loop of a cell, as the schedule ran it."""

    index: int  # position in the run's schedule
    measurement: Measurement
    used: bool = True  # False: contended and replaced by a later retry

    @property
    def contended(self) -> bool:
        other = self.measurement.other_cpu_fraction
        return other is not None and other > BUSY_MACHINE_LIMIT


def is_contended(measurement: Measurement) -> bool:
    """Whether other processes held a large share of the CPU during this loop."""
    return Trial(0, measurement).contended


def timing_block(trials: Sequence[Trial], items_per_sample: int, run_start_s: float) -> dict:
    """Statistics of one timed quantity over its trials (see `bench.stats` for the method).

    `center_us` and its 95% interval come from the trial medians; the percentiles, min, max
    and `jitter_rel` describe the samples inside the loops and are never used to call a
    difference. `samples_us` holds every raw sample of every trial, in trial order; each
    trial names its `offset` and `n` in it.
    """
    used = [t for t in trials if t.used]
    pooled: list[float] = []
    entries: list[dict[str, Any]] = []
    medians = []
    jitters = []
    for trial in trials:
        samples = [round(s / 1e3, 3) for s in trial.measurement.samples_ns]
        median = float(np.median(samples))
        q1, q3 = np.percentile(samples, [25, 75])
        if trial.used:
            medians.append(median)
            jitters.append(float((q3 - q1) / median) if median > 0 else 0.0)
        entries.append({
            "index": trial.index, "start_s": round(trial.measurement.started_s - run_start_s, 3),
            "offset": len(pooled), "n": len(samples), "median_us": median,
            "warmup_iters": trial.measurement.warmup_iters,
            "wall_s": round(trial.measurement.wall_s, 4),
            "other_cpu_fraction": trial.measurement.other_cpu_fraction,
            "contended": trial.contended, "used": trial.used,
        })  # fmt: skip
        pooled.extend(samples)
    used_samples = [s for t, e in zip(trials, entries, strict=True) if t.used
                    for s in pooled[e["offset"] : e["offset"] + e["n"]]]  # fmt: skip
    block: dict[str, Any] = dict(summarize(used_samples, items_per_sample))
    center, low, high = trial_interval(medians)
    scope = "trials"
    if low is None:  # one trial: only the loop's own interval exists
        scope, center = "loop", float(np.median(used_samples))
        interval = median_ci(used_samples)
        low, high = interval if interval else (None, None)
    logs = np.log(np.asarray(medians))
    block.update({
        "center_us": center, "ci95_low_us": low, "ci95_high_us": high,
        "ci95_rel_halfwidth": (high - low) / 2.0 / center if low and high and center else None,
        "interval_scope": scope, "n_trials": len(used),
        "trial_spread": float(logs.std(ddof=1)) if len(medians) > 1 else None,
        "jitter_rel": float(np.median(jitters)) if jitters else None,
        "contended_trials": sum(t.contended for t in used),
        "retried_trials": sum(not t.used for t in trials),
        "other_cpu_fraction": max((t.measurement.other_cpu_fraction or 0.0 for t in used),
                                  default=None),
        "throughput_items_per_s": items_per_sample / (center * 1e-6) if center > 0 else None,
        "wall_s": round(sum(t.measurement.wall_s for t in used), 3),
        "trials": entries, "samples_us": pooled,
    })  # fmt: skip
    return block


def stability_warnings(block: Mapping[str, Any] | None, governor: str | None = None) -> list[str]:
    """Why a cell's timing should be read with care (empty when nothing was found)."""
    if not block or not block.get("n"):
        return []
    found = []
    if governor and governor != "performance":
        found.append(f"CPU frequency governor is {governor!r}, not 'performance'")
    contended, trials = block.get("contended_trials") or 0, block.get("n_trials") or 0
    if contended:
        found.append(
            f"other processes held over {BUSY_MACHINE_LIMIT:.0%} of the CPU during {contended} "
            f"of {trials} trials (kept after retries): figures are contended"
        )
    spread = block.get("trial_spread")
    if spread is not None and spread > STABILITY_LIMIT:
        found.append(f"trial medians spread {spread:.0%} (> {STABILITY_LIMIT:.0%})")
    jitter = block.get("jitter_rel")
    if jitter is not None and jitter > STABILITY_LIMIT:
        found.append(f"IQR/median inside the loops {jitter:.0%} > {STABILITY_LIMIT:.0%}")
    if block.get("interval_scope") == "loop":
        found.append("one trial: the interval covers one loop's jitter, not the run's")
    if block.get("unreliable_percentiles"):
        tails = ", ".join(f"p{p}" for p in block["unreliable_percentiles"])
        found.append(f"too few samples for {tails} (fewer than 10 beyond each)")
    return found
