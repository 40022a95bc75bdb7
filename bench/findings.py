"""Findings of a profile: what engineers hunt for by hand in a runtime's profiler output.

Pure functions over normalised nodes (bench.profiles). Each finding is a dict: `kind`,
`message`, `nodes` (up to five names), `time_us` per inference and `share` of the node sum.
Kinds: `reference_kernel` (an unoptimised `ref` implementation), `cpu_fallback` (nodes on
the CPU provider inside a CUDA session), `copy` (Memcpy nodes between devices),
`layout_conversion` (Reorder/Transpose nodes the runtime inserted), `precision` (a layer
computing in another floating precision than the cell asked for), `overhead` (time outside
any node, against the un-profiled median).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: A gap between the node sum and the un-profiled median beyond this share is explained.
OVERHEAD_NOTE = 0.15
FLOAT_PRECISIONS = ("fp32", "fp16", "bf16", "fp64")
LAYOUT_OPS = ("reorder", "reorderinput", "reorderoutput", "transpose", "layouttransform")
_SHOWN = 5


def _is_ref(node: dict[str, Any]) -> bool:
    kernel = str(node.get("kernel") or "").lower()
    return kernel.startswith("ref") or "_ref" in kernel


def _cpu_in_cuda(node: dict[str, Any]) -> bool:
    return node.get("device") == "CPUExecutionProvider" and not str(
        node.get("op_type", "")
    ).startswith("Memcpy")


def _is_copy(node: dict[str, Any]) -> bool:
    return str(node.get("op_type", "")).startswith("Memcpy")


def _is_layout(node: dict[str, Any]) -> bool:
    return str(node.get("op_type", "")).lower() in LAYOUT_OPS and node.get("inserted") is True


def _finding(
    kind: str, nodes: Sequence[dict[str, Any]], total: float, text: Callable[[str], str]
) -> dict[str, Any]:
    time_us = sum(n["time_us"] for n in nodes)
    share = time_us / total if total > 0 else 0.0
    names = [n["name"] for n in sorted(nodes, key=lambda n: -n["time_us"])[:_SHOWN]]
    more = f" and {len(nodes) - _SHOWN} more" if len(nodes) > _SHOWN else ""
    where = ", ".join(names) + more
    return {"kind": kind, "message": text(f"{len(nodes)} node(s), {time_us:.1f} µs "
            f"({share:.0%} of node time): {where}"), "nodes": names,
            "time_us": time_us, "share": share}  # fmt: skip


def find(
    nodes: Sequence[dict[str, Any]], block: dict[str, Any], asked: str, device: str
) -> list[dict[str, Any]]:
    """Every finding of one cell's profile, most costly first (overhead last)."""
    total = float(block.get("node_sum_us") or 0.0)
    found = []
    checks: list[tuple[str, Callable[[dict[str, Any]], bool], Callable[[str], str]]] = [
        ("reference_kernel", _is_ref,
         lambda s: f"reference (unoptimised) kernels: {s}"),
        ("layout_conversion", _is_layout,
         lambda s: f"layout conversions inserted by the runtime: {s}"),
        ("copy", _is_copy, lambda s: f"copies between devices: {s}"),
    ]  # fmt: skip
    if device == "cuda":
        checks.append(("cpu_fallback", _cpu_in_cuda,
                       lambda s: f"nodes on the CPU inside a CUDA session: {s}"))  # fmt: skip
    for kind, test, text in checks:
        hits = [n for n in nodes if test(n)]
        if hits:
            found.append(_finding(kind, hits, total, text))
    by_precision: dict[str, list[dict[str, Any]]] = {}
    for n in nodes:
        precision = n.get("precision") or ""
        if precision in FLOAT_PRECISIONS and precision != asked:
            by_precision.setdefault(precision, []).append(n)
    for precision, hits in sorted(by_precision.items()):
        found.append(_finding("precision", hits, total, _precision_text(precision, asked)))
    found.sort(key=lambda f: -f["time_us"])
    note = overhead_finding(block)
    return [*found, note] if note else found


def _precision_text(precision: str, asked: str) -> Callable[[str], str]:
    return lambda s: f"layers computing in {precision}, not the {asked} asked: {s}"


def overhead_finding(block: dict[str, Any]) -> dict[str, Any] | None:
    """The gap between the un-profiled median and the profiled node sum, explained when it
    is over 15% of the median: time outside any node (framework, binding, dispatch), or the
    profiler's own cost when the nodes add up to more than the median."""
    median, node_sum = block.get("unprofiled_us"), block.get("node_sum_us")
    if not median or node_sum is None:
        return None
    gap = median - node_sum
    share = gap / median
    if abs(share) <= OVERHEAD_NOTE:
        return None
    if gap > 0:
        text = (f"{gap:.1f} µs ({share:.0%} of the un-profiled median {median:.1f} µs) "
                "outside any node: framework overhead (session or request dispatch, input "
                "and output binding, thread-pool wake-ups) the profiler does not attribute")  # fmt: skip
    else:
        text = (f"the profiled nodes add up to {node_sum:.1f} µs, {-share:.0%} more than the "
                f"un-profiled median {median:.1f} µs: the profiler's own cost per node (and "
                "the machine's state between the timed trials and the profiled pass)")  # fmt: skip
    run_us = block.get("profiled_run_us")
    if run_us:
        text += (f"; the profiled inferences themselves took {run_us:.1f} µs each (median), "
                 f"{run_us / median:.2f}x the un-profiled median")  # fmt: skip
    return {"kind": "overhead", "message": text, "nodes": [], "time_us": gap, "share": share}
