"""The first-divergence search on a small ONNX graph where one node is wrong on one side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bench.checkworker import unoptimised_outputs
from bench.diverge import instrument, plan_probes, search, windows

RNG = np.random.default_rng(1)


def _graph(path: Path) -> Path:
    """x -> MatMul -> Add -> Relu -> MatMul -> Tanh -> y, named nodes, dynamic batch."""
    weights = [numpy_helper.from_array(RNG.standard_normal(s).astype(np.float32), n)
               for n, s in (("w1", (16, 32)), ("b1", (32,)), ("w2", (32, 8)))]  # fmt: skip
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"], name="fc1"),
        helper.make_node("Add", ["h1", "b1"], ["h2"], name="bias1"),
        helper.make_node("Relu", ["h2"], ["h3"], name="act1"),
        helper.make_node("MatMul", ["h3", "w2"], ["h4"], name="fc2"),
        helper.make_node("Tanh", ["h4"], ["y"], name="act2"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])], weights,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _doctored(node_name: str, op_type: str, **attributes):
    """A runtime whose kernel for one node computes another function."""

    def run(path: str, names: list[str], inputs) -> dict[str, np.ndarray]:
        model = onnx.load(path)
        node = next(n for n in model.graph.node if n.name == node_name)
        node.op_type = op_type
        node.attribute.extend(helper.make_attribute(k, v) for k, v in attributes.items())
        wrong = path + ".doctored.onnx"
        onnx.save(model, wrong)
        try:
            return unoptimised_outputs(wrong, None, inputs)
        finally:
            Path(wrong).unlink()

    return run


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return _graph(tmp_path / "g.onnx")


def test_the_wrong_node_is_named_with_its_inputs_errors(model_path: Path) -> None:
    inputs = {"x": RNG.standard_normal((4, 16)).astype(np.float32)}
    found = search(str(model_path), inputs, 1e-5, unoptimised_outputs,
                   _doctored("act1", "LeakyRelu", alpha=0.1))  # fmt: skip
    assert found["status"] == "found", found
    node = found["node"]
    assert (node["name"], node["op_type"], node["index"]) == ("act1", "Relu", 2)
    assert node["error"] > 1e-2
    assert node["inputs"] == [{"name": "h2", "from": "bias1", "error": 0.0}]
    assert found["compared"] == 3 and found["passes"] == 1  # fc1, bias1, act1


def test_a_faithful_runtime_diverges_nowhere(model_path: Path) -> None:
    inputs = {"x": RNG.standard_normal((4, 16)).astype(np.float32)}
    found = search(str(model_path), inputs, 1e-5, unoptimised_outputs, unoptimised_outputs)
    assert found["status"] == "not_found" and found["compared"] == 5 and found["absent"] == 0


def test_the_search_is_bounded_in_tensors_memory_and_time(model_path: Path) -> None:
    inputs = {"x": RNG.standard_normal((4, 16)).astype(np.float32)}
    late = _doctored("act2", "Sigmoid")
    one_by_one = search(str(model_path), inputs, 1e-5, unoptimised_outputs, late, max_probes=2)
    assert one_by_one["status"] == "found" and one_by_one["node"]["name"] == "act2"
    assert one_by_one["passes"] == 3  # windows of 2, 2, 1 tensors
    model = onnx.load(model_path)
    probes = plan_probes(model, {"x": (4, 16)})
    assert [p.nbytes for p in probes] == [4 * 32 * 4.0] * 3 + [4 * 8 * 4.0] * 2
    tiny_budget = windows(probes, max_probes=100, budget_mb=1000 / 2**20)
    assert [len(w) for w in tiny_budget] == [1, 1, 3]  # 512, 512, 512+128+128 of 1000 bytes
    stopped = search(str(model_path), inputs, 1e-5, unoptimised_outputs, late, deadline_s=0.0)
    assert stopped["status"] == "stopped" and stopped["passes"] == 0
    probed = instrument(model, probes)
    assert [o.name for o in probed.graph.output][1:] == [p.probe for p in probes]
