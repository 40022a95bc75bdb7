"""One profile schema for every runtime: a backend's `RawProfile` (its own profiler's node
times) becomes per-node and per-op-type times per inference, shares of the total, kernels,
precisions, devices and findings (bench.findings), checked against the cell's un-profiled
median. Pure functions; the record keeps the op-type summary, the run folder the rest."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from typing import Any

from bench.backends.base import NodeTime, RawProfile
from bench.findings import find

#: The record keeps this many of a cell's nodes (the profile file keeps them all).
TOP_NODES = 10
#: Op families for comparing runtimes that name their operators differently (first match
#: wins, on the lower-cased op type): ORT `Conv`, OpenVINO `Convolution` and torch
#: `aten::mkldnn_convolution` are all `conv` (OpenVINO's `Convert` is `convert`).
FAMILIES = (
    ("convert", ("convert", "cast", "aten::to", "_to_copy", "quantize")),  # before conv
    ("conv", ("conv",)),
    ("matmul", ("matmul", "gemm", "fullyconnected", "addmm", "aten::mm", "bmm", "linear",
                "einsum", "attention", "sdpa")),
    ("pool", ("pool",)),
    ("norm", ("norm", "mvn")),
    ("softmax", ("softmax",)),
    ("activation", ("relu", "gelu", "sigmoid", "tanh", "erf", "clamp", "silu", "swish",
                    "elu", "hardtanh", "activation")),
    ("copy", ("memcpy", "copy", "clone", "contiguous", "to_dense")),
    ("layout", ("reorder", "transpose", "permute", "reshape", "view", "flatten", "squeeze",
                "concat", "aten::cat", "gather", "slice", "split", "expand", "as_strided",
                "aten::t", "select", "shape", "unflatten", "stack")),
    ("elementwise", ("add", "mul", "sub", "div", "eltwise", "multiply", "subtract",
                     "divide", "pow", "sqrt", "exp", "where", "neg", "reciprocal")),
    ("allocation", ("empty", "resize_", "zeros", "fill_")),
)  # fmt: skip


def op_family(op_type: str) -> str:
    """The family of an op type (`other` when none matches)."""
    text = op_type.lower()
    for family, needles in FAMILIES:
        if any(n in text for n in needles):
            return family
    return "other"


def safe_name(cell_id: str) -> str:
    """A file name for a cell id (`simple_cnn/ort-cpu/dynamo-op18/b1/fp32` ->
    `simple_cnn__ort-cpu__dynamo-op18__b1__fp32`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", cell_id.replace("/", "__")).lstrip(".")[:200]


def per_inference(node: NodeTime, runs: int) -> float:
    """A node's time per inference: the median over the profiled runs where the runtime
    reports each run (ONNX Runtime, OpenVINO; robust to a run the scheduler interrupted),
    else its total over the runs (torch.profiler's averages). A node that ran in only some
    runs counts zero in the others."""
    if node.samples_us and len(node.samples_us) <= runs:
        return statistics.median([*node.samples_us, *[0.0] * (runs - len(node.samples_us))])
    return node.total_us / runs


def summarise(
    raw: RawProfile, asked_precision: str, unprofiled_us: float | None, device: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the record's profile block, the full per-node profile for the run folder)."""
    runs = max(raw.runs, 1)
    node_sum = sum(per_inference(n, runs) for n in raw.nodes)
    nodes: list[dict[str, Any]] = []
    for n in raw.nodes:
        time_us = per_inference(n, runs)
        nodes.append({
            "name": n.name, "op_type": n.op_type, "family": op_family(n.op_type),
            "time_us": time_us, "share": time_us / node_sum if node_sum > 0 else 0.0,
            "kernel": n.kernel, "precision": n.precision, "device": n.device,
            "runs": n.runs, "inserted": n.inserted,
        })  # fmt: skip
    op_types = _by_op_type(nodes, node_sum)
    block: dict[str, Any] = {
        "tool": raw.tool, "runs": raw.runs, "node_sum_us": node_sum,
        "unprofiled_us": unprofiled_us,
        "profiled_run_us": statistics.median(raw.run_us) if raw.run_us else None,
        "overhead_us": None, "overhead_share": None, "coverage": None,
        "op_types": op_types,
        "top_nodes": sorted(nodes, key=lambda n: -n["time_us"])[:TOP_NODES],
        "findings": [], "file": None, "trace_file": None, "error": None, "wall_s": None,
    }  # fmt: skip
    if unprofiled_us and unprofiled_us > 0:
        block["overhead_us"] = unprofiled_us - node_sum
        block["overhead_share"] = (unprofiled_us - node_sum) / unprofiled_us
        block["coverage"] = node_sum / unprofiled_us
    block["findings"] = find(nodes, block, asked_precision, device)
    full = {"tool": raw.tool, "runs": raw.runs, "node_sum_us": node_sum,
            "unprofiled_us": unprofiled_us, "nodes": nodes, "op_types": op_types,
            "findings": block["findings"]}  # fmt: skip
    return block, full


def _by_op_type(nodes: Sequence[dict[str, Any]], node_sum: float) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for n in nodes:
        g = groups.setdefault(n["op_type"], {
            "op_type": n["op_type"], "family": n["family"], "time_us": 0.0, "share": 0.0,
            "nodes": 0, "kernels": [], "precisions": [], "devices": [],
        })  # fmt: skip
        g["time_us"] += n["time_us"]
        g["nodes"] += 1
        for key, value in (("kernels", n["kernel"]), ("precisions", n["precision"]),
                           ("devices", n["device"])):  # fmt: skip
            if value and value not in g[key] and len(g[key]) < 8:
                g[key].append(value)
    for g in groups.values():
        g["share"] = g["time_us"] / node_sum if node_sum > 0 else 0.0
    return sorted(groups.values(), key=lambda g: -g["time_us"])


def failed_block(reason: str) -> dict[str, Any]:
    """The profile block of a cell whose profiled pass failed (its timing stands)."""
    return {"tool": None, "runs": 0, "node_sum_us": None, "unprofiled_us": None,
            "profiled_run_us": None, "overhead_us": None, "overhead_share": None,
            "coverage": None, "op_types": [], "top_nodes": [], "findings": [], "file": None,
            "trace_file": None, "error": reason, "wall_s": None}  # fmt: skip


def trace_document(raw: RawProfile, cell_id: str) -> dict[str, Any]:
    """The Trace Event Format document of a profile (JSON Object Format), for Perfetto and
    chrome://tracing."""
    return {"traceEvents": list(raw.trace), "displayTimeUnit": "ms",
            "otherData": {"cell_id": cell_id, "tool": raw.tool, "runs": raw.runs}}  # fmt: skip


#: Trace Event Format phases (the format's own list).
PHASES = set("BEXiIPCbneSTpFsftNODMVvRc(),")


def trace_problems(document: Any) -> list[str]:
    """What breaks the Trace Event Format in `document` ([] when it is valid): a JSON object
    with a `traceEvents` list, each event an object with a known `ph`, and for complete
    (`X`) events a `name`, a numeric `ts` and a non-negative numeric `dur`."""
    if not isinstance(document, dict) or not isinstance(document.get("traceEvents"), list):
        return ["not an object with a traceEvents list"]
    problems = []
    for index, event in enumerate(document["traceEvents"]):
        where = f"traceEvents[{index}]"
        if not isinstance(event, dict):
            problems.append(f"{where}: not an object")
            continue
        ph = event.get("ph")
        if not isinstance(ph, str) or ph not in PHASES:
            problems.append(f"{where}: unknown phase {ph!r}")
            continue
        if ph in "BEXiIC" and not isinstance(event.get("ts"), int | float):
            problems.append(f"{where}: ts missing or not a number")
        if ph == "X":
            dur = event.get("dur")
            if not isinstance(event.get("name"), str):
                problems.append(f"{where}: name missing")
            if not isinstance(dur, int | float) or dur < 0:
                problems.append(f"{where}: dur missing or negative")
        for key in ("pid", "tid"):
            if key in event and not isinstance(event[key], int | str):
                problems.append(f"{where}: {key} is neither a number nor a string")
    return problems
