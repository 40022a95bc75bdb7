"""Type checks of env.json and run.json for the fields that reports, compare and resume use
(records: bench.validate)."""

from __future__ import annotations

from typing import Any

from bench.allocator import POLICIES
from bench.control import WORKLOADS
from bench.validate import Check, finite, flag, integer, mapping, number, text, texts


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or finite(value)


ENV_CHECKS: dict[str, Check] = {
    **{
        k: _scalar
        for k in (
            "host",
            "cpu_model",
            "platform",
            "python",
            "bench_version",
            "bench_commit",
            "cpu_governor",
            "memory_gib",
            "physical_cores",
            "logical_cores",
        )
    },
    "gpus": texts,
    "command": texts,
    "versions": lambda v: v is None or (mapping(v) and all(_scalar(x) for x in v.values())),
    "resumed_with": lambda v: v is None or (isinstance(v, list) and all(texts(c) for c in v)),
}


def env_problems(env: dict[str, Any]) -> list[str]:
    """The env.json fields that reports use and that hold the wrong type."""
    return [f"{name} has the wrong type ({type(env[name]).__name__})"
            for name, check in ENV_CHECKS.items() if name in env and not check(env[name])]  # fmt: skip


def _list_of(check: Check, size: int | None = None) -> Check:
    def ok(value: Any) -> bool:
        return isinstance(value, list) and all(
            check(v) and v is not None and (size is None or len(v) == size) for v in value
        )

    return ok


def _pair(first: Check, second: Check) -> Check:
    return lambda v: isinstance(v, list) and len(v) == 2 and first(v[0]) and second(v[1])


_CONFIG: dict[str, Check] = {
    **{k: _list_of(text) for k in ("models", "backends", "precisions")},
    **{k: _list_of(integer) for k in ("opsets", "batch_sizes", "parity_seeds")},
    **{k: integer for k in ("threads", "requests", "seed")},
    **{k: text for k in ("exporter", "mode", "out_dir", "cache_dir", "cpus", "ray_address")},
    "executor": lambda v: v in ("local", "ray"),
    "allocator": lambda v: v in POLICIES,
    "control_workload": lambda v: v in WORKLOADS,
    "targets": _list_of(text),
    **{k: flag for k in ("end_to_end", "control")},
    "cell_timeout": lambda v: finite(v) and v > 0,
    "timing": lambda v: isinstance(v, dict) and all(finite(x) for x in v.values()),
    "dims": _list_of(_pair(lambda v: isinstance(v, str), _list_of(integer))),
    "file_dims": _list_of(_pair(lambda v: isinstance(v, str), integer)),
    "shard": lambda v: (
        v is None
        or (
            _pair(integer, integer)(v)
            and v[0] is not None
            and v[1] is not None
            and 1 <= v[0] <= v[1]
        )
    ),
    "backend_options": _list_of(
        lambda v: isinstance(v, list) and len(v) == 3 and all(isinstance(x, str) for x in v)
    ),
    "tolerance_overrides": _list_of(
        lambda v: (
            isinstance(v, list)
            and len(v) == 3
            and isinstance(v[0], str)
            and number(v[1])
            and number(v[2])
        )
    ),
}
REQUIRED_CONFIG = ("models", "backends", "opsets", "batch_sizes", "precisions", "timing")


def config_problem(config: dict[str, Any]) -> str | None:
    """What keeps run.json's config from being rebuilt and run, or None."""
    for name in REQUIRED_CONFIG:
        if name not in config:
            return f"config has no {name}"
    for name, check in _CONFIG.items():
        if name in config and not check(config[name]):
            return f"config.{name} has the wrong type or value: {str(config[name])[:60]}"
    timing = config["timing"]
    for name in ("trials", "warmup_iters", "min_iters"):
        if name in timing and not (integer(timing[name]) and timing[name] >= 0):
            return f"config.timing.{name} is not a whole number"
    return None
