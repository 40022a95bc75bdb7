"""Type checks of what a run folder holds, for the fields that reports, compare and resume
read: a record, env.json, run.json. Each check returns the first problem as text, or None.

Numbers must be finite (`json` reads 1e999 as inf and accepts NaN); bench writes non-finite
values as null or as the strings "inf"/"-inf" (`bench.record.jsonable`), which stay valid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from bench.record import KINDS, STATUSES

Check = Callable[[Any], bool]
MAX_BATCH = 2**31
INF_TEXT = ("inf", "-inf")


def finite(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 1e300
    return isinstance(value, float) and math.isfinite(value)


def number(value: Any) -> bool:
    return value is None or finite(value) or value in INF_TEXT


def integer(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool)
                             and abs(value) < 2**63)  # fmt: skip


def text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def flag(value: Any) -> bool:
    return value is None or isinstance(value, bool)


def texts(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def mapping(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and all(isinstance(k, str) for k in value))


def numbers(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(finite(v) for v in value))


def _fields(value: Any, checks: Mapping[str, Check], where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"{where} is a {type(value).__name__}, not an object"
    for name, check in checks.items():
        if name in value and not check(value[name]):
            return f"{where}.{name} has the wrong type ({type(value[name]).__name__})"
    return None


_TRIAL = {"median_us": number, "used": flag, "contended": flag, "n": integer, "offset": integer,
          "index": integer, "start_s": number, "wall_s": number, "other_cpu_fraction": number}  # fmt: skip
_BLOCK: dict[str, Check] = {
    **{
        k: number
        for k in (
            "center_us",
            "ci95_low_us",
            "ci95_high_us",
            "ci95_rel_halfwidth",
            "p50_us",
            "p90_us",
            "p95_us",
            "p99_us",
            "mean_us",
            "std_us",
            "min_us",
            "max_us",
            "cv",
            "iqr_over_median",
            "throughput_items_per_s",
            "wall_s",
            "other_cpu_fraction",
            "trial_spread",
            "jitter_rel",
            "items_per_s_wall",
        )
    },
    **{
        k: integer
        for k in (
            "n",
            "n_trials",
            "retried_trials",
            "contended_trials",
            "requests",
            "inferences_per_round",
        )
    },
    "interval_scope": text,
    "stop_reason": text,
    "samples_us": numbers,
    "trials": lambda v: v is None or isinstance(v, list),
}
_OUTPUT = {**{k: number for k in ("max_abs_err", "max_rel_err", "mean_abs_err", "cosine",
                                  "frac_beyond_tol", "tol_ratio", "argmax_agreement")},
           "nan_count": integer, "inf_count": integer, "name": text}  # fmt: skip
_TOP: dict[str, Check] = {
    **{
        k: text
        for k in (
            "run_id",
            "cell_id",
            "model",
            "model_source",
            "backend",
            "device",
            "exporter",
            "exporter_used",
            "precision",
            "reason",
            "traceback",
            "reference",
            "twin",
            "host",
        )
    },
    **{k: integer for k in ("opset_requested", "opset_actual", "trial_group")},
    **{
        k: mapping
        for k in (
            "settings",
            "cold_start",
            "memory",
            "export",
            "tolerance",
            "parity",
            "latency",
            "throughput",
        )
    },
    "warnings": texts,
    "mode": lambda v: v in ("latency", "throughput"),
    "worker_imported_torch": flag,
    "dims": lambda v: (
        v is None or (mapping(v) and all(integer(s) and s is not None for s in v.values()))
    ),
}


def _item(value: Any, checks: Mapping[str, Check], where: str) -> str | None:
    """`_fields` for one element of a list, which must be an object (never null)."""
    if not isinstance(value, dict):
        return _fields(value, checks, where) or f"{where} is not an object"
    return _fields(value, checks, where)


def _block(block: Any, where: str) -> str | None:
    problem = _fields(block, _BLOCK, where)
    if problem or block is None:
        return problem
    for i, trial in enumerate(block.get("trials") or []):
        problem = _item(trial, _TRIAL, f"{where}.trials[{i}]")
        if problem:
            return problem
        median = trial.get("median_us")
        if median is None or not finite(median) or median <= 0:  # compare takes its log
            return f"{where}.trials[{i}].median_us {median!r} is not a positive number"
    return None


def restore_infinities(record: dict[str, Any]) -> None:
    """bench writes a non-finite measurement as "inf"/"-inf" (`jsonable`): give readers the
    float back in the numeric fields the checks above accept it in."""

    def fix(values: Any, names: Any) -> None:
        if isinstance(values, dict):
            for name in names:
                if values.get(name) in INF_TEXT:
                    values[name] = float(values[name])

    block_numbers = [k for k, check in _BLOCK.items() if check is number]
    for block in [*(record.get("latency") or {}).values(), record.get("throughput")]:
        fix(block, block_numbers)
    parity = record.get("parity")
    if isinstance(parity, dict):
        fix(parity, ("rtol", "atol"))
        for output in parity.get("outputs") or []:
            fix(output, [k for k, check in _OUTPUT.items() if check is number])
    for name in ("cold_start", "memory", "tolerance"):
        fix(record.get(name), list(record.get(name) or {}))
    fix(record.get("export"), ("export_s",))


def record_problem(record: dict[str, Any]) -> str | None:
    """What is wrong with a record's types, or None (fields it lacks are not checked)."""
    problem = _fields(record, _TOP, "record")
    if problem:
        return problem.removeprefix("record.")
    kind = record.get("kind", "cell")
    if kind not in KINDS:
        return f"kind {kind!r}; valid: {', '.join(KINDS)}"
    if record.get("status") not in STATUSES:
        return f"status {record.get('status')!r}; valid: {', '.join(STATUSES)}"
    if kind == "cell":
        for name in ("cell_id", "model", "backend", "precision"):
            if not isinstance(record.get(name), str):
                return f"a cell record without a text {name}"
        batch = record.get("batch_size")
        if batch is None or not integer(batch) or not 1 <= batch <= MAX_BATCH:
            return f"batch_size {batch!r} is not a whole number from 1 to {MAX_BATCH}"
    for name in ("cold_start", "memory", "tolerance"):
        problem = _fields(record.get(name), dict.fromkeys(record.get(name) or {}, number), name)
        if problem:
            return problem
    latency = record.get("latency") or {}
    for which, block in latency.items():
        problem = _block(block, f"latency.{which}")
        if problem:
            return problem
    problem = _block(record.get("throughput"), "throughput")
    if problem:
        return problem
    return _parity(record.get("parity")) or _fields(record.get("export"), _EXPORT, "export")


_EXPORT = {"sha256": text, "graph_sha256": text, "export_s": number, "cached": flag,
           "opset_requested": integer, "opset_actual": integer, "exporter_used": text,
           "exporter_requested": text, "path": text, "error": text, "fallback_reason": text}  # fmt: skip


def _parity(parity: Any) -> str | None:
    problem = _fields(parity, {"passed": flag, "rtol": number, "atol": number,
                               "problems": texts, "outputs": lambda v: v is None
                               or isinstance(v, list)}, "parity")  # fmt: skip
    if problem or parity is None:
        return problem
    for i, output in enumerate(parity.get("outputs") or []):
        problem = _item(output, _OUTPUT, f"parity.outputs[{i}]")
        if problem:
            return problem
    return None
