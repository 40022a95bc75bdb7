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
    for node in graph.node:
        node.name = ""
        node.doc_string = ""
    for value in (*graph.input, *graph.output, *graph.value_info):
        value.doc_string = ""
    return hashlib.sha256(graph.SerializeToString(deterministic=True)).hexdigest()
