"""A fingerprint of an ONNX graph that ignores the opset number and cosmetic names, so cells
whose exports are the same graph at different opsets are recognised as such."""

from __future__ import annotations

import hashlib
from pathlib import Path


def graph_sha256(path: str | Path) -> str | None:
    """sha256 of the graph with node names and doc strings cleared (the opset lives outside
    the graph, in the model's opset imports). None when the file cannot be read."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=True)
    except Exception:
        return None
    graph = model.graph
    graph.doc_string = ""
    del graph.value_info[:]  # shape annotations an exporter may or may not write
    initializers = sorted(graph.initializer, key=lambda t: t.name)  # their order means nothing
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    for node in graph.node:
        node.name = ""
    for item in (graph, *graph.node, *graph.input, *graph.output, *graph.initializer):
        if hasattr(item, "doc_string"):
            item.doc_string = ""
        if hasattr(item, "metadata_props"):  # exporters' provenance notes (onnx >= 1.16)
            del item.metadata_props[:]
    return hashlib.sha256(graph.SerializeToString(deterministic=True)).hexdigest()
