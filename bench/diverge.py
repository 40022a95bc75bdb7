"""Where a backend first diverges from the reference: every intermediate tensor of the ONNX
graph exposed as an output, compared node by node in topological order (onnx and numpy; the
two runtimes are passed in as functions, so this module loads none).

Each node output gets an Identity "probe" with a unique name that is declared a graph output,
so a runtime cannot fold it into another name. A runtime that fuses nodes still has to
produce every declared output; a probe it does not return counts as absent, never as a match.

Bounds: a pass exposes at most `max_probes` tensors and about `budget_mb` MiB of them (from
shape inference at the cell's input shapes; a tensor of unknown size counts as the largest
known one), so memory per side stays near the budget whatever the model's size. Passes walk
the graph in topological order and stop at the first pass holding a diverging node, or when
`deadline_s` has run out (the result then says how far it got).
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.verdicts import scaled_error

PROBE_PREFIX = "bench_probe_"
MAX_PROBES = 1024
BUDGET_MB = 256.0
DEADLINE_S = 120.0

Arrays = Mapping[str, np.ndarray]
#: (model path, output names, inputs) -> outputs by name
RunFn = Callable[[str, list[str], Arrays], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Probe:
    """One node output watched in the search."""

    node: int  # index in topological order
    node_name: str
    op_type: str
    tensor: str  # the tensor's name in the graph
    probe: str  # the unique name it is exposed under
    nbytes: float | None


def _concrete(model: Any, shapes: Mapping[str, tuple[int, ...]]) -> Any:
    """A copy of the graph (weights left out) whose inputs have the cell's concrete shapes,
    with shapes inferred, for the size of every intermediate tensor."""
    import onnx

    light = copy.deepcopy(model)
    for value in light.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[value.name], strict=False):
                dim.Clear()
                dim.dim_value = int(size)
    try:
        return onnx.shape_inference.infer_shapes(light, data_prop=True)
    except Exception:  # inference is an aid to the memory bound, never a reason to stop
        return light


def _sizes(inferred: Any) -> dict[str, float]:
    import onnx

    sizes: dict[str, float] = {}
    for value in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        tensor = value.type.tensor_type
        dims = [d.dim_value for d in tensor.shape.dim if d.HasField("dim_value")]
        if tensor.HasField("shape") and len(dims) == len(tensor.shape.dim):
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).itemsize
            sizes[value.name] = float(np.prod(dims, dtype=np.float64)) * itemsize
    return sizes


def plan_probes(model: Any, shapes: Mapping[str, tuple[int, ...]]) -> list[Probe]:
    """A probe for every output of every node of the main graph, in topological order
    (Constant nodes left out: they compute nothing)."""
    sizes = _sizes(_concrete(model, shapes))
    probes: list[Probe] = []
    for index, node in enumerate(model.graph.node):
        if node.op_type == "Constant":
            continue
        name = node.name or f"#{index} {node.op_type}"
        for tensor in node.output:
            if tensor:
                probes.append(Probe(index, name, node.op_type, tensor,
                                    f"{PROBE_PREFIX}{len(probes)}", sizes.get(tensor)))  # fmt: skip
    return probes


def windows(probes: list[Probe], max_probes: int = MAX_PROBES,
            budget_mb: float = BUDGET_MB) -> list[list[Probe]]:  # fmt: skip
    """Consecutive groups of probes within the per-pass bounds (at least one probe each)."""
    known = [p.nbytes for p in probes if p.nbytes is not None]
    unknown = max(known, default=0.0)
    out: list[list[Probe]] = [[]]
    used = 0.0
    for probe in probes:
        size = probe.nbytes if probe.nbytes is not None else unknown
        if out[-1] and (len(out[-1]) >= max_probes or used + size > budget_mb * 2**20):
            out.append([])
            used = 0.0
        out[-1].append(probe)
        used += size
    return [w for w in out if w]


def instrument(model: Any, window: list[Probe]) -> Any:
    """A copy of `model` that also outputs every tensor of `window` under its probe name."""
    import onnx

    probed = onnx.ModelProto()
    probed.CopyFrom(model)
    for probe in window:
        probed.graph.node.append(onnx.helper.make_node("Identity", [probe.tensor], [probe.probe],
                                                       name=probe.probe))  # fmt: skip
        probed.graph.output.append(onnx.ValueInfoProto(name=probe.probe))
    return probed


def _save(model: Any, source: str) -> str:
    """Write `model` where its external data (if any) still resolves; returns the path."""
    external = any(t.data_location == 1 for t in model.graph.initializer)
    folder = os.path.dirname(os.path.abspath(source)) if external else tempfile.gettempdir()
    fd, path = tempfile.mkstemp(prefix=".bench-probe-", suffix=".onnx", dir=folder)
    os.close(fd)
    with open(path, "wb") as fh:
        fh.write(model.SerializeToString())
    return path


def _compare(probe: Probe, reference: Arrays, backend: Arrays) -> float | None:
    if probe.probe not in backend or probe.probe not in reference:
        return None
    return scaled_error(backend[probe.probe], reference[probe.probe])


def search(
    path: str,
    inputs: Arrays,
    threshold: float,
    run_reference: RunFn,
    run_backend: RunFn,
    deadline_s: float = DEADLINE_S,
    max_probes: int = MAX_PROBES,
    budget_mb: float = BUDGET_MB,
) -> dict[str, Any]:
    """The first node (topological order) whose output's normwise error against the reference
    exceeds `threshold`, with its inputs' errors; or how far the search got."""
    import onnx

    start = time.monotonic()
    model = onnx.load(path, load_external_data=False)
    probes = plan_probes(model, {k: np.asarray(v).shape for k, v in inputs.items()})
    produced = {p.tensor: p for p in probes}
    initializers = {t.name for t in model.graph.initializer}
    errors: dict[str, float | None] = {}
    passes = absent = 0
    bound = (f"at most {max_probes} tensors and {budget_mb:g} MiB per pass and side, "
             f"{deadline_s:g} s in all")  # fmt: skip
    result: dict[str, Any] = {"status": "not_found", "threshold": threshold, "bound": bound,
                              "nodes": len(model.graph.node), "tensors": len(probes)}  # fmt: skip
    for window in windows(probes, max_probes, budget_mb):
        if time.monotonic() - start > deadline_s:
            result["status"] = "stopped"
            break
        probed = _save(instrument(model, window), path)
        try:
            names = [p.probe for p in window]
            reference = run_reference(probed, names, inputs)
            backend = run_backend(probed, names, inputs)
        finally:
            os.unlink(probed)
        passes += 1
        for probe in window:
            error = errors[probe.tensor] = _compare(probe, reference, backend)
            absent += error is None
            if error is not None and not error <= threshold:
                result.update(status="found", node=_node_entry(probe, error, model, errors,
                                                                produced, initializers))  # fmt: skip
                break
        if result["status"] == "found":
            break
    compared = sum(e is not None for e in errors.values())
    result.update(compared=compared, absent=absent, passes=passes,
                  seconds=round(time.monotonic() - start, 3))  # fmt: skip
    return result


def _node_entry(
    probe: Probe,
    error: float,
    model: Any,
    errors: Mapping[str, float | None],
    produced: Mapping[str, Probe],
    initializers: set[str],
) -> dict[str, Any]:
    node = model.graph.node[probe.node]
    graph_inputs = {v.name for v in model.graph.input}
    inputs = []
    for name in node.input:
        if not name:
            continue
        found: float | None
        if name in initializers:
            source, found = "initializer", 0.0
        elif name in graph_inputs:
            source, found = "graph input", 0.0
        elif name in produced:
            source, found = produced[name].node_name, errors.get(name)
        else:
            source, found = "constant", 0.0
        inputs.append({"name": name, "from": source, "error": found})
    return {"index": probe.node, "name": probe.node_name, "op_type": probe.op_type,
            "output": probe.tensor, "error": error, "inputs": inputs}  # fmt: skip
