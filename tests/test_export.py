from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from bench.errors import BenchError
from bench.export import actual_opset, export_model, validate_opsets
from bench.models import resolve_model


@pytest.fixture(scope="module")
def cnn():
    spec = resolve_model("simple_cnn")
    return spec, spec.build_module()


def _batch_dim(path: str) -> str:
    model = onnx.load(path)
    return model.graph.input[0].type.tensor_type.shape.dim[0].dim_param


def test_dynamo_records_requested_and_actual_opset(cnn, tmp_path: Path) -> None:
    spec, module = cnn
    result = export_model(spec, module, "dynamo", 13, tmp_path)
    assert result.ok and result.exporter_used == "dynamo"
    assert result.opset_requested == 13
    assert result.opset_actual == actual_opset(result.path) == 18  # torch 2.13 writes 18
    assert _batch_dim(result.path)  # the batch dimension stays symbolic


def test_auto_falls_back_to_torchscript_for_old_opsets(cnn, tmp_path: Path) -> None:
    spec, module = cnn
    result = export_model(spec, module, "auto", 13, tmp_path)
    assert result.ok and result.exporter_requested == "auto"
    assert result.exporter_used == "torchscript" and result.opset_actual == 13
    assert "wrote opset 18, not 13" in result.fallback_reason
    assert _batch_dim(result.path) == "batch"


def test_auto_keeps_dynamo_when_it_delivers(cnn, tmp_path: Path) -> None:
    spec, module = cnn
    result = export_model(spec, module, "auto", 18, tmp_path)
    assert result.exporter_used == "dynamo" and result.opset_actual == 18
    assert result.fallback_reason is None


def test_export_is_cached_on_disk(cnn, tmp_path: Path) -> None:
    spec, module = cnn
    first = export_model(spec, module, "torchscript", 17, tmp_path)
    second = export_model(spec, module, "torchscript", 17, tmp_path)
    assert not first.cached and second.cached
    assert first.path == second.path and first.sha256 == second.sha256


def test_export_failure_is_a_result_not_a_crash(tmp_path: Path) -> None:
    import torch

    class NoOnnx(torch.nn.Module):
        def forward(self, x):
            return torch.fft.fft(x).abs()  # complex ops have no ONNX mapping at opset 9

    spec = resolve_model("simple_cnn")
    result = export_model(spec, NoOnnx(), "torchscript", 9, tmp_path)
    assert not result.ok and result.error
    assert not list(tmp_path.glob("*/model.onnx"))


def test_opset_validation_names_the_ranges() -> None:
    validate_opsets([13, 17, 18], "auto")
    with pytest.raises(
        BenchError,
        match=r"opset 21 cannot be written with exporter 'torchscript'; valid: dynamo 7-\d+, torchscript 7-20",
    ):
        validate_opsets([21], "torchscript")


def test_same_graph_at_two_opsets_has_one_graph_hash(tmp_path: Path) -> None:
    from bench.graphhash import graph_sha256

    spec = resolve_model("simple_cnn")
    module = spec.build_module()
    op17, op18 = (export_model(spec, module, "dynamo", o, tmp_path) for o in (17, 18))
    traced = export_model(spec, module, "torchscript", 13, tmp_path)
    assert op17.ok and op18.ok and traced.ok
    assert op17.sha256 != op18.sha256  # the files differ (opset, provenance notes) ...
    assert graph_sha256(op17.path) == graph_sha256(op18.path)  # ... the graph does not
    assert graph_sha256(traced.path) != graph_sha256(op18.path)
