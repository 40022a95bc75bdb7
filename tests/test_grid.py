from __future__ import annotations

from bench.config import RunConfig
from bench.grid import expand_grid

CONSUMES = {"ort-cpu": "onnx", "openvino": "onnx", "torch": "torch"}


def test_grid_is_the_full_product_and_torch_has_no_opset_axis() -> None:
    config = RunConfig(
        models=("simple_cnn",),
        backends=("ort-cpu", "openvino", "torch"),
        opsets=(13, 17, 18),
        batch_sizes=(1, 8, 32),
        precisions=("fp32", "bf16"),
    )
    cells = expand_grid(config, CONSUMES)
    onnx_cells = [c for c in cells if c.backend != "torch"]
    torch_cells = [c for c in cells if c.backend == "torch"]
    assert len(onnx_cells) == 2 * 3 * 3 * 2
    assert len(torch_cells) == 3 * 2
    assert all(c.opset is None and c.exporter is None for c in torch_cells)
    assert {c.opset for c in onnx_cells} == {13, 17, 18}
    assert len({c.cell_id for c in cells}) == len(cells)


def test_cells_are_grouped_by_backend_so_one_worker_serves_many() -> None:
    config = RunConfig(backends=("ort-cpu", "torch", "openvino"), opsets=(17,), batch_sizes=(1, 2))
    order = [c.backend for c in expand_grid(config, CONSUMES)]
    assert order == ["ort-cpu", "ort-cpu", "torch", "torch", "openvino", "openvino"]


def test_cell_id_names_every_axis() -> None:
    config = RunConfig(backends=("ort-cpu",), opsets=(17,), batch_sizes=(8,))
    (cell,) = expand_grid(config, CONSUMES)
    assert cell.cell_id == "simple_cnn/ort-cpu/auto-op17/b8/fp32"
