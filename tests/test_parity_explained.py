"""Parity that explains itself, end to end: planted faults (tests/fault_backends.py) and hard
models (tests/parity_models.py) flagged with the right attribution, correct backends passing,
the first diverging node named, `bench explain` on a finished run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

DRIVER = (
    "import sys, fault_backends; fault_backends.register(); "
    "from bench.cli import main; raise SystemExit(main(sys.argv[1:]))"
)
TIMING = ["--trials", "1", "--warmup-iters", "1", "--warmup-time", "0", "--min-iters", "3",
          "--min-time", "0.01", "--max-time", "0.05", "--no-control"]  # fmt: skip
FAULTS = "ort-cpu,fault-perturb,fault-bf16,fault-mix,fault-nan1,fault-double,fault-relu"
EXPLAINED = "simple_cnn/ort-cpu/auto-op17/b3/fp32"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), *sys.path])
    return env


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True,
                          env=_env(), timeout=900)  # fmt: skip


def _cells(out: Path) -> dict[str, dict]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {r["cell_id"]: r for r in map(json.loads, lines) if r.get("kind") == "cell"}


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "run"
    proc = _bench("run", "--models", "simple_cnn", "--backends", FAULTS, "--no-baseline",
                  "--opsets", "17", "--batch-sizes", "1,3", "--explain-cell", EXPLAINED,
                  "--out", str(out), *TIMING)  # fmt: skip
    assert proc.returncode == 1, proc.stderr + proc.stdout[-3000:]
    return out


def _get(cells: dict[str, dict], backend: str, batch: int) -> dict:
    return cells[f"simple_cnn/{backend}/auto-op17/b{batch}/fp32"]


def test_correct_backends_pass_both_verdicts(faults: Path) -> None:
    cells = _cells(faults)
    for backend in ("ort-cpu", "fault-double"):
        for batch in (1, 3):
            record = _get(cells, backend, batch)
            parity = record["parity"]
            assert record["status"] == "ok", record["reason"]
            assert parity["verdicts"]["allclose"]["passed"]
            assert parity["verdicts"]["noise_floor"]["passed"]
            assert parity["verdicts"]["deciding"] == "noise_floor"
            assert parity["oracle"]["status"] == "ok" and parity["attribution"] is None
            assert parity["noise_floor"]["output_logits"] > 0
            assert parity["outputs"][0]["floor_ratio"] < parity["verdicts"]["noise_floor"]["k"]
        assert _get(cells, backend, 3)["parity"]["batch_consistency"]["passed"] is True
        assert _get(cells, backend, 1)["parity"]["batch_consistency"]["checked"] is False


def test_every_planted_fault_is_flagged_with_its_attribution(faults: Path) -> None:
    cells = _cells(faults)
    expected = {"fault-perturb": "runtime", "fault-bf16": "precision", "fault-nan1": "runtime",
                "fault-relu": "runtime"}  # fmt: skip
    for backend, cause in expected.items():
        for batch in (1, 3):
            record = _get(cells, backend, batch)
            assert record["status"] == "parity_failed", (backend, batch)
            assert record["parity"]["attribution"]["cause"] == cause, (backend, batch)
            assert f"attributed to: {cause}" in record["reason"]
    # a 5e-4 relative error passes the fixed allclose: only the noise floor catches it
    perturbed = _get(cells, "fault-perturb", 1)["parity"]["verdicts"]
    assert perturbed["allclose"]["passed"] and perturbed["noise_floor"]["passed"] is False
    signature = _get(cells, "fault-bf16", 3)["parity"]["attribution"]["precision_signature"]
    assert signature["format"] == "bf16" and signature["evidence"] == "exact"
    assert "NaN" in _get(cells, "fault-nan1", 1)["reason"]
    # mixing items across the batch: invisible alone, caught at batch 3 by both checks
    assert _get(cells, "fault-mix", 1)["status"] == "ok"
    mixed = _get(cells, "fault-mix", 3)
    assert mixed["status"] == "parity_failed"
    assert mixed["parity"]["batch_consistency"]["passed"] is False
    assert mixed["parity"]["attribution"]["cause"] == "runtime"
    evidence = mixed["parity"]["attribution"]["evidence"]["output_logits"]
    assert evidence["file_vs_fp64"] < 1e-5 < evidence["backend_vs_fp64"]


def test_the_wrong_node_inside_the_graph_is_named(faults: Path) -> None:
    cells = _cells(faults)
    record = _get(cells, "fault-relu", 3)
    model = onnx.load(record["export"]["path"])
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    divergence = record["parity"]["divergence"]
    assert divergence["status"] == "found"
    assert (divergence["node"]["name"], divergence["node"]["op_type"]) == (relu.name, "Relu")
    assert all(i["error"] < divergence["threshold"] for i in divergence["node"]["inputs"])
    assert f"first diverging node: {relu.name} (Relu)" in record["reason"]
    report = (faults / "report.md").read_text()
    assert "## Bug reports (cells that failed parity)" in report
    assert report.count("- **Report to:** onnxruntime") == 5  # at most 5 written out
    assert "4 more: `python -m bench explain RUN_DIR CELL_ID`" in report
    assert "**Where it starts:** node `" in report


def test_explain_cell_walks_a_passing_cell_too(faults: Path) -> None:
    cells = _cells(faults)
    divergence = cells[EXPLAINED]["parity"]["divergence"]
    assert cells[EXPLAINED]["status"] == "ok"
    assert divergence["status"] == "not_found" and divergence["compared"] > 0
    assert _get(cells, "ort-cpu", 1)["parity"]["divergence"] is None  # not asked, passed


def test_bench_explain_on_a_finished_run(faults: Path, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    shutil.copytree(faults, run)
    cell = "simple_cnn/fault-relu/auto-op17/b1/fp32"
    proc = _bench("explain", str(run), cell)
    assert proc.returncode == 0, proc.stderr + proc.stdout[-3000:]
    assert "### onnxruntime 1." in proc.stdout and "gives wrong outputs" in proc.stdout
    assert "**Where it starts:** node `" in proc.stdout and "` (Relu), 2 of " in proc.stdout
    assert (run / "explain" / "simple_cnn_fault-relu_auto-op17_b1_fp32.md").is_file()
    lines = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    latest = [r for r in lines if r.get("cell_id") == cell][-1]
    assert latest["parity"]["divergence"]["node"]["op_type"] == "Relu"
    bad = _bench("explain", str(run), "simple_cnn/nope/auto-op17/b1/fp32")
    assert bad.returncode == 2 and "is not a cell of this run; valid:" in bad.stderr


@pytest.fixture(scope="module")
def hard_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hard") / "run"
    models = "parity_models:batch_scaled,parity_models:cancelling,parity_models:fixed_fp32"
    proc = _bench("run", "--models", models, "--backends", "ort-cpu", "--exporter",
                  "torchscript", "--opsets", "17", "--batch-sizes", "2,3", "--out", str(out),
                  *TIMING)  # fmt: skip
    assert proc.returncode == 1, proc.stderr + proc.stdout[-3000:]
    return out


def test_export_fault_model_and_fallback(hard_models: Path) -> None:
    cells = _cells(hard_models)
    scaled = "batch_scaled/ort-cpu/torchscript-op17"
    assert cells[f"{scaled}/b2/fp32"]["status"] == "ok"  # the example's batch size
    wrong = cells[f"{scaled}/b3/fp32"]
    assert wrong["status"] == "parity_failed"
    assert wrong["parity"]["attribution"]["cause"] == "export"
    assert "reads the file the same way" in wrong["parity"]["attribution"]["second_opinion"]
    assert wrong["parity"]["divergence"]["status"] == "not_found"  # the runtime follows the file
    # PyTorch itself gives an item alone another result: not held against the backend
    eager = cells["batch_scaled/torch/eager/b3/fp32"]
    assert eager["status"] == "ok" and eager["parity"]["batch_consistency"]["passed"] is None
    for batch in (2, 3):
        ill = cells[f"cancelling/ort-cpu/torchscript-op17/b{batch}/fp32"]
        verdicts = ill["parity"]["verdicts"]
        assert ill["status"] == "ok"  # the noise floor decides
        assert not verdicts["allclose"]["passed"] and verdicts["noise_floor"]["passed"]
        assert ill["parity"]["attribution"]["cause"] == "model"
        fixed = cells[f"fixed_fp32/ort-cpu/torchscript-op17/b{batch}/fp32"]
        assert fixed["status"] == "ok"
        assert fixed["parity"]["oracle"]["status"] == "failed"
        assert "double" in fixed["parity"]["oracle"]["reason"]
        assert fixed["parity"]["verdicts"]["deciding"] == "allclose"


def test_explicit_tolerances_always_win(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _bench("run", "--models", "simple_cnn,parity_models:cancelling", "--backends",
                  "fault-perturb,ort-cpu", "--no-baseline", "--exporter", "torchscript",
                  "--opsets", "17", "--batch-sizes", "1", "--rtol", "1e-3", "--out", str(out),
                  *TIMING)  # fmt: skip
    assert proc.returncode == 1, proc.stderr + proc.stdout[-3000:]
    cells = _cells(out)
    lucky = cells["simple_cnn/fault-perturb/torchscript-op17/b1/fp32"]
    assert lucky["status"] == "ok"  # allclose decides: the perturbation is inside rtol
    assert lucky["parity"]["verdicts"]["deciding"] == "allclose"
    assert lucky["parity"]["verdicts"]["noise_floor"]["passed"] is False
    assert lucky["parity"]["attribution"]["cause"] == "runtime"  # still explained
    ill = cells["cancelling/ort-cpu/torchscript-op17/b1/fp32"]
    assert ill["status"] == "parity_failed" and ill["parity"]["attribution"]["cause"] == "model"
