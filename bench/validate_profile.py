"""Type checks of a record's `profile` block (schema 5), for reports and compare: the first
problem as text, or None. Built on bench.validate's checks."""

from __future__ import annotations

from typing import Any

from bench.validate import _fields, _item, finite, flag, integer, mapping, text, texts


def number(value: Any) -> bool:
    """Null or a finite number (profiles never hold infinities)."""
    return value is None or finite(value)


_BLOCK = {**{k: number for k in ("node_sum_us", "unprofiled_us", "profiled_run_us",
                                 "overhead_us", "overhead_share", "coverage", "wall_s")},
          "runs": integer, "tool": text, "file": text, "trace_file": text, "error": text,
          **{k: lambda v: v is None or isinstance(v, list)
             for k in ("op_types", "top_nodes", "findings")}}  # fmt: skip
_OP_TYPE = {"op_type": lambda v: isinstance(v, str), "family": text,
            "time_us": lambda v: finite(v) and v >= 0, "share": number, "nodes": integer,
            "kernels": texts, "precisions": texts, "devices": texts}  # fmt: skip
_NODE = {"name": lambda v: isinstance(v, str), "op_type": lambda v: isinstance(v, str),
         "family": text, "time_us": lambda v: finite(v) and v >= 0, "share": number,
         "kernel": text, "precision": text, "device": text, "runs": integer,
         "inserted": flag}  # fmt: skip
_FINDING = {"kind": lambda v: isinstance(v, str), "message": lambda v: isinstance(v, str),
            "nodes": texts, "time_us": number, "share": number}  # fmt: skip


def profile_problem(profile: Any) -> str | None:
    """What is wrong with a `profile` block's types, or None (null is no profile)."""
    if not mapping(profile):
        return f"profile is a {type(profile).__name__}, not an object"
    problem = _fields(profile, _BLOCK, "profile")
    if problem or profile is None:
        return problem
    for name, checks in (("op_types", _OP_TYPE), ("top_nodes", _NODE), ("findings", _FINDING)):
        for i, item in enumerate(profile.get(name) or []):
            problem = _item(item, checks, f"profile.{name}[{i}]")
            if problem:
                return problem
    return None
