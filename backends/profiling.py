"""Reading each runtime's own profiler output into `NodeTime`s and Trace Event Format events.

Pure functions over plain data (no runtime imported here), so tests feed them recorded
output. bench.profiles normalises what they return into the record's profile block.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from bench.backends.base import NodeTime

#: ONNX Runtime's element type names (`output_type_shape`) -> bench's precision names.
_ORT_TYPES = {"float": "fp32", "float16": "fp16", "bfloat16": "bf16", "double": "fp64",
              "int8": "int8", "uint8": "uint8", "int32": "int32", "int64": "int64",
              "bool": "bool"}  # fmt: skip
#: OpenVINO's exec type suffixes (`brgconv_avx2_f32`, `ref_any_I8`) -> precision names.
_OV_TYPES = {"f32": "fp32", "f16": "fp16", "bf16": "bf16", "f64": "fp64", "i8": "int8",
             "u8": "uint8", "i32": "int32", "i64": "int64", "u1": "bool", "boolean": "bool"}  # fmt: skip
_OV_SUFFIX = re.compile(r"_([a-z0-9]+)$", re.IGNORECASE)
#: Trace arguments kept from ONNX Runtime's events (the rest is memory bookkeeping).
_ORT_ARGS = ("op_name", "provider", "node_index", "input_type_shape", "output_type_shape")


def ort_precision(args: dict[str, Any]) -> str:
    """The element type of a node's first output, as a precision name ("" when unknown)."""
    shapes = args.get("output_type_shape") or []
    if shapes and isinstance(shapes[0], dict) and shapes[0]:
        name = next(iter(shapes[0]))
        return _ORT_TYPES.get(name, name)
    return ""


def ort_nodes(
    events: Sequence[dict[str, Any]], runs: int, graph_names: set[str]
) -> tuple[list[NodeTime], list[dict[str, Any]], list[float]]:
    """Nodes, trace and per-run durations of the last `runs` `model_run`s of ONNX Runtime's
    profile (the earlier ones were the warm-up)."""
    windows = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: e["ts"],
    )[-runs:]
    if not windows:
        return [], [], []
    start = windows[0]["ts"]

    def inside(event: dict[str, Any]) -> bool:
        ts = event.get("ts", -1)
        return any(w["ts"] <= ts <= w["ts"] + w["dur"] for w in windows)

    found: dict[str, NodeTime] = {}
    trace: list[dict[str, Any]] = []
    for w in windows:
        trace.append({**_event(w, start), "name": "model_run", "cat": "Session"})
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time") or not inside(event):
            continue
        node = name.removesuffix("_kernel_time")
        args = event.get("args") or {}
        entry = found.get(node)
        if entry is None:
            entry = found[node] = NodeTime(
                node, str(args.get("op_name", "?")), 0.0, 0,
                kernel=str(args.get("op_name", "")), precision=ort_precision(args),
                device=str(args.get("provider", "")), inserted=node not in graph_names,
            )  # fmt: skip
        entry.total_us += float(event.get("dur", 0))
        entry.samples_us.append(float(event.get("dur", 0)))
        entry.runs += 1
        kept = {k: args[k] for k in _ORT_ARGS if k in args}
        trace.append({**_event(event, start), "name": node, "cat": entry.op_type, "args": kept})
    return list(found.values()), trace, [float(w["dur"]) for w in windows]


def _event(event: dict[str, Any], start: float) -> dict[str, Any]:
    return {"ph": "X", "pid": event.get("pid", 0), "tid": event.get("tid", 0),
            "ts": float(event["ts"]) - start, "dur": float(event.get("dur", 0))}  # fmt: skip


def ov_precision(exec_type: str) -> str:
    """The precision an OpenVINO exec type names (`jit_avx512_brgconv_bf16` -> bf16)."""
    match = _OV_SUFFIX.search(exec_type)
    return _OV_TYPES.get(match.group(1).lower(), "") if match else ""


def ov_nodes(
    per_run: Iterable[Sequence[tuple[str, str, str, float]]], graph_names: set[str]
) -> tuple[list[NodeTime], list[dict[str, Any]]]:
    """Nodes and a trace from OpenVINO's performance counters: per run, the executed nodes
    as (name, type, exec type, real time µs). OpenVINO reports durations, not start times:
    the trace lays each run's nodes end to end in execution order (args say so)."""
    found: dict[str, NodeTime] = {}
    trace: list[dict[str, Any]] = []
    clock = 0.0
    for index, counters in enumerate(per_run):
        run_start = clock
        for name, node_type, exec_type, real_us in counters:
            entry = found.get(name)
            if entry is None:
                entry = found[name] = NodeTime(
                    name, node_type, 0.0, 0, kernel=exec_type,
                    precision=ov_precision(exec_type), device="CPU",
                    inserted=name not in graph_names and node_type == "Reorder",
                )  # fmt: skip
            entry.total_us += real_us
            entry.samples_us.append(real_us)
            entry.runs += 1
            trace.append({"ph": "X", "pid": 1, "tid": 1, "ts": clock, "dur": real_us,
                          "name": name, "cat": node_type,
                          "args": {"exec_type": exec_type, "layout": "end to end (synthesized)"}})  # fmt: skip
            clock += real_us
        trace.append({"ph": "X", "pid": 1, "tid": 0, "ts": run_start, "dur": clock - run_start,
                      "name": f"inference {index + 1} (sum of node times)", "cat": "run"})  # fmt: skip
    return list(found.values()), trace


def torch_nodes(averages: Iterable[Any], runs: int, precision: str) -> list[NodeTime]:
    """Operators from `torch.profiler`'s `key_averages()`, by self CPU time (a parent's time
    less its children's, so the times add up without counting a call twice)."""
    nodes = []
    for avg in averages:
        self_us = float(getattr(avg, "self_cpu_time_total", 0.0))
        if self_us <= 0:
            continue
        nodes.append(NodeTime(str(avg.key), str(avg.key), self_us, runs, kernel=str(avg.key),
                              precision=precision, device="cpu", inserted=False))  # fmt: skip
    return nodes
