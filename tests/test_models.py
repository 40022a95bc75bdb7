"""The model zoo, user models by path, ONNX files by path, and honest export failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST_TIMING

from bench.errors import BenchError
from bench.export import export_model
from bench.models import MODELS, resolve_model

ZOO = ["mlp", "resnet_small", "gru_seq", "upsample_net", "tiny_transformer"]


def bench(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=900)  # fmt: skip


def _records(out: Path) -> list[dict]:
    """The cells' records (the control workload's left out)."""
    lines = (out / "results.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "cell"]


def test_zoo_passes_parity_everywhere_at_fp32(tmp_path, bench_env) -> None:
    out = tmp_path / "zoo"
    proc = bench("run", "--models", ",".join(ZOO), "--backends", "ort-cpu,openvino",
                 "--batch-sizes", "3", "--out", str(out), *FAST_TIMING, env=bench_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout[-3000:]
    records = _records(out)
    assert len(records) == len(ZOO) * (2 * 3 + 1)  # two backends x opsets 13,17,18, + torch
    for r in records:
        assert r["status"] == "ok", (r["cell_id"], r.get("reason"))
        assert r["parity"]["passed"]
    transformer = next(r for r in records if r["model"] == "tiny_transformer")
    assert {o["name"] for o in transformer["parity"]["outputs"]} == {"last_hidden_state", "logits"}
    assert transformer["dims"] == {"seq": 32}


def test_every_zoo_model_declares_inputs_and_tolerances() -> None:
    assert set(ZOO) <= set(MODELS)
    dtypes = set()
    for name in ZOO:
        spec = resolve_model(name)
        assert spec.tolerances["fp32"].rtol <= 1e-3
        dtypes |= {i.dtype for i in spec.inputs}
    assert {"float32", "int64"} <= dtypes
    mask = resolve_model("tiny_transformer").make_inputs({"batch": 6, "seq": 10}, seed=3)
    assert mask["attention_mask"].dtype.name == "int64"
    assert (mask["attention_mask"][:, 0] == 1).all() and (mask["attention_mask"] == 0).any()
    assert mask["input_ids"].max() < 1000


def test_dims_axis_sweeps_sequence_length(tmp_path, bench_env) -> None:
    out = tmp_path / "dims"
    proc = bench("run", "--models", "gru_seq", "--backends", "ort-cpu", "--opsets", "18",
                 "--batch-sizes", "2", "--dims", "seq=3,9", "--out", str(out), *FAST_TIMING,
                 env=bench_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = _records(out)
    assert sorted(r["dims"]["seq"] for r in records) == [3, 3, 9, 9]
    ort = [r for r in records if r["backend"] == "ort-cpu"]
    # dynamo fixes the GRU's sequence length; auto notices and falls back to TorchScript
    assert all(r["exporter_used"] == "torchscript" for r in ort)
    assert "did not keep the dynamic axes" in ort[0]["export"]["fallback_reason"]


USER_SPEC = """
from torch import nn
from bench.models import InputSpec, ModelSpec, OutputSpec

def make():
    return ModelSpec(
        name="two_inputs",
        build=lambda: Adder(),
        inputs=(InputSpec("a", ("batch", 5)), InputSpec("b", ("batch", 5), generator="uniform")),
        outputs=(OutputSpec("total"), OutputSpec("product")),
    )

class Adder(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Linear(5, 5)

    def forward(self, a, b):
        return self.scale(a) + b, a * b

def as_tuple():
    return Adder(), [InputSpec("a", ("batch", 5)), InputSpec("b", ("batch", 5))]
"""


def test_user_model_files_run_by_path(tmp_path, bench_env) -> None:
    model_file = tmp_path / "my_model.py"
    model_file.write_text(USER_SPEC)
    out = tmp_path / "user"
    refs = f"{model_file}:make,{model_file}:as_tuple"
    proc = bench("run", "--models", refs, "--backends", "ort-cpu,openvino", "--opsets", "17",
                 "--batch-sizes", "2", "--out", str(out), *FAST_TIMING, env=bench_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = _records(out)
    assert len(records) == 2 * 3 and all(r["status"] == "ok" for r in records)
    tuple_form = [r for r in records if r["model"].endswith(":as_tuple")]
    assert {o["name"] for o in tuple_form[0]["parity"]["outputs"]} == {"output_0", "output_1"}


def test_onnx_file_runs_by_path_against_ort_reference(tmp_path, bench_env) -> None:
    spec = resolve_model("tiny_transformer")
    export = export_model(spec, spec.build_module(), "torchscript", 17, tmp_path / "cache")
    assert export.ok
    out = tmp_path / "file"
    proc = bench("run", "--models", export.path, "--backends", "ort-cpu,openvino",
                 "--batch-sizes", "2", "--shape", "input_ids=1x12", "--out", str(out),
                 *FAST_TIMING, env=bench_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = _records(out)
    assert len(records) == 2  # ort-cpu and openvino once each (no opset axis), no torch cells
    stem = Path(export.path).stem
    for r in records:
        assert r["status"] == "ok" and r["exporter"] == "file" and r["opset_actual"] == 17
        assert r["reference"].startswith("onnxruntime CPU, graph optimizations disabled")
        assert r["dims"] == {"seq": 12}
        assert r["model"] == stem and r["model_source"] == export.path  # named by its stem
        assert r["cell_id"].startswith(f"{stem}/")
    assert "onnxruntime CPU, graph optimizations disabled" in (out / "report.md").read_text()


def test_corrupt_and_escaping_onnx_files_are_refused(tmp_path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07not really a model")
    with pytest.raises(BenchError, match="cannot read ONNX file"):
        resolve_model(str(broken))
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    weight.data_location = TensorProto.EXTERNAL
    del weight.float_data[:]
    weight.external_data.add(key="location", value="../../etc/passwd")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])], [weight],
    )  # fmt: skip
    escaping = tmp_path / "sub" / "escape.onnx"
    escaping.parent.mkdir()
    onnx.save(helper.make_model(graph), str(escaping))
    with pytest.raises(BenchError, match="points outside the model's folder"):
        resolve_model(str(escaping))


def test_export_failures_are_rows_and_the_rest_goes_on(tmp_path, bench_env) -> None:
    out = tmp_path / "fail"
    models = "failing_models:branchy,failing_models:grid_sampler,simple_cnn"
    proc = bench("run", "--models", models, "--backends", "ort-cpu", "--opsets", "13,18",
                 "--batch-sizes", "1", "--out", str(out), *FAST_TIMING, env=bench_env)  # fmt: skip
    assert proc.returncode == 1
    cells = {r["cell_id"]: r for r in _records(out)}
    branchy13 = cells["branchy/ort-cpu/auto-op13/b1/fp32"]
    assert branchy13["status"] == "export_failed"
    assert "data-dependent control flow" in branchy13["reason"]
    assert "dynamo exporter" in branchy13["reason"]  # both exporters' reasons are kept
    grid13 = cells["grid_sampler/ort-cpu/auto-op13/b1/fp32"]
    assert grid13["status"] == "export_failed" and "not supported" in grid13["reason"]
    grid18 = cells["grid_sampler/ort-cpu/auto-op18/b1/fp32"]
    assert grid18["status"] == "ok"  # the operator has a mapping at opset 18
    assert all(r["status"] == "ok" for k, r in cells.items() if k.startswith("simple_cnn/"))
    assert cells["branchy/torch/eager/b1/fp32"]["status"] == "ok"
