"""Noise floor, the two verdicts, batch consistency and attribution, on arrays (no runtime)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.assess import assess, fold_consistency
from bench.attribution import attribute, precision_signature, second_opinion
from bench.parity import compare_outputs
from bench.upgrade_parity import upgrade_parity
from bench.verdicts import (
    NOISE_K,
    U32,
    batch_consistency,
    deciding_verdict,
    noise_floors,
    scaled_error,
)

RNG = np.random.default_rng(0)
TRUTH = RNG.standard_normal((4, 10))  # fp64 "oracle"
TORCH32 = (TRUTH * (1 + 2e-7 * RNG.standard_normal(TRUTH.shape))).astype(np.float32)
OK = {"fp32": [{"y": TORCH32}], "fp64": [{"y": TRUTH}]}


def _bf16(a: np.ndarray) -> np.ndarray:
    bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)


def _assess(actual: np.ndarray, fp32=TORCH32, fp64=TRUTH, overridden=False, precision="fp32"):
    report = compare_outputs([{"y": actual}], [{"y": fp32}], 1e-3, 1e-5)
    return assess(report, [{"y": actual}], [{"y": fp32}], [{"y": fp64}] if fp64 is not None
                  else None, {"status": "ok"}, precision, overridden)  # fmt: skip


def test_scaled_error_is_normwise_and_refuses_nan_and_shape() -> None:
    truth = np.array([4.0, -2.0, 0.0])
    assert scaled_error(np.array([4.0, -2.0, 1e-3]), truth) == pytest.approx(1e-3 / 4)
    assert scaled_error(np.array([np.nan, -2.0, 0.0]), truth) == np.inf
    assert scaled_error(np.zeros(2), truth) == np.inf
    assert scaled_error(np.array([1, 2]), np.array([1, 2])) == 0.0
    assert scaled_error(np.array([1, 3]), np.array([1, 2])) == np.inf
    floors = noise_floors([{"y": TRUTH.astype(np.float32)}], [{"y": TRUTH}])
    assert U32 <= floors["y"] < 4 * U32  # rounding alone: about one unit roundoff, never below


def test_which_verdict_decides() -> None:
    assert deciding_verdict("fp32", True, False)[0] == "noise_floor"
    assert deciding_verdict("fp32", True, True)[0] == "allclose"  # --rtol/--atol win
    assert deciding_verdict("bf16", True, False)[0] == "allclose"
    assert deciding_verdict("fp32", False, False)[0] == "allclose"  # no fp64 oracle


def test_the_noise_floor_verdict_can_fail_where_allclose_passes() -> None:
    lucky = TORCH32.copy()
    lucky[0, 0] *= 1 + 5e-4  # inside rtol 1e-3: allclose passes
    found = _assess(lucky)
    assert found.allclose_passed and found.noise_floor_passed is False
    assert not found.passed and found.deciding == "noise_floor"
    assert "x its noise floor" in found.problems[0]
    out = found.parity["outputs"][0]
    assert out["floor_ratio"] > NOISE_K and out["err_vs_fp64"] == pytest.approx(
        scaled_error(lucky, TRUTH)
    )
    explicit = _assess(lucky, overridden=True)  # explicit tolerance: allclose decides
    assert explicit.passed and explicit.noise_floor_passed is False


def test_allclose_can_fail_where_the_noise_floor_passes() -> None:
    """An ill-conditioned output: PyTorch fp32 itself is 1e-3 of scale from fp64, the backend
    as far, in another direction; allclose against PyTorch fails, the floor verdict passes."""
    noisy32 = (TRUTH + 1e-3 * RNG.standard_normal(TRUTH.shape)).astype(np.float32)
    backend = (TRUTH + 1e-3 * RNG.standard_normal(TRUTH.shape)).astype(np.float32)
    found = _assess(backend, fp32=noisy32)
    assert not found.allclose_passed and found.noise_floor_passed
    assert found.passed and found.failing_criterion() == "allclose"
    cause = attribute(criterion="allclose", rtol=1e-3, atol=1e-5, precision="fp32",
                      torch32=[{"y": noisy32}], fp64=[{"y": TRUTH}], floors=found.floors,
                      backend=[{"y": backend}], file_ref=[{"y": noisy32}])  # fmt: skip
    assert cause["cause"] == "model" and "ill-conditioned" in cause["summary"]


def test_without_an_oracle_allclose_decides_and_says_why() -> None:
    found = _assess(TORCH32, fp64=None)
    assert found.passed and found.deciding == "allclose"
    floor = found.parity["verdicts"]["noise_floor"]
    assert floor["passed"] is None and floor["reason"]


def test_batch_consistency_catches_items_that_depend_on_their_neighbours() -> None:
    batched = {"y": TORCH32}
    alone = [{"y": TORCH32[i : i + 1]} for i in (0, 3)]
    floors = {"y": 1e-7}
    assert batch_consistency(alone, batched, [0, 3], floors, 1e-3, 1e-5)["passed"]
    mixed = {"y": TORCH32 + 0.05 * (np.roll(TORCH32, -1, axis=0) - TORCH32)}
    result = batch_consistency(alone, mixed, [0, 3], floors, 1e-3, 1e-5)
    assert result["passed"] is False and "items 0, 3 run alone differ" in result["problems"][0]
    found = _assess(TORCH32)
    fold_consistency(found, result)
    assert not found.passed and found.parity["batch_consistency"] is result


def _blame(backend, file_ref, consistent=None, file_consistent=None, problem=None):
    floors = noise_floors([{"y": TORCH32}], [{"y": TRUTH}])
    return attribute(criterion="noise_floor", rtol=1e-3, atol=1e-5, precision="fp32",
                     torch32=[{"y": TORCH32}], fp64=[{"y": TRUTH}], floors=floors,
                     backend=[{"y": backend}], file_ref=file_ref, file_ref_problem=problem,
                     backend_consistent=consistent, file_consistent=file_consistent)  # fmt: skip


def test_attribution_names_export_runtime_precision_and_says_why() -> None:
    wrong = (TORCH32 * 1.01).astype(np.float32)
    export = _blame(wrong, [{"y": wrong}])
    assert export["cause"] == "export" and "file itself disagrees" in export["summary"]
    evidence = export["evidence"]["y"]
    assert evidence["file_vs_fp64"] > 1e-3 and evidence["backend_vs_file"] == 0.0
    runtime = _blame(wrong, [{"y": TORCH32}])
    assert runtime["cause"] == "runtime" and "0.01" in runtime["summary"]
    precision = _blame(_bf16(TORCH32), [{"y": TORCH32}])
    assert precision["cause"] == "precision"
    assert precision["precision_signature"]["format"] == "bf16"
    mixing = _blame(wrong, [{"y": TORCH32}], consistent=False, file_consistent=True)
    assert mixing["cause"] == "runtime" and "alone and inside a batch" in mixing["summary"]
    fixed = _blame(TORCH32, [{"y": TORCH32}], consistent=False, file_consistent=False)
    assert fixed["cause"] == "export"
    unknown = _blame(wrong, None, problem="worker crashed")
    assert unknown["cause"] == "unknown" and "worker crashed" in unknown["summary"]


def test_an_export_verdict_gets_a_second_opinion() -> None:
    """ReferenceEvaluator reading the file as PyTorch does overturns `export`: the
    unoptimised ONNX Runtime kernels (shared with ort-cpu) were wrong, not the file."""
    wrong = (TORCH32 * 1.01).astype(np.float32)
    floors = noise_floors([{"y": TORCH32}], [{"y": TRUTH}])
    common = {"torch32": [{"y": TORCH32}], "fp64": [{"y": TRUTH}], "floors": floors,
              "rtol": 1e-3, "atol": 1e-5}  # fmt: skip
    confirmed = second_opinion(_blame(wrong, [{"y": wrong}]), [{"y": wrong}], None, **common)
    assert confirmed["cause"] == "export" and "reads the file the same way" in (
        confirmed["second_opinion"])  # fmt: skip
    overturned = second_opinion(_blame(wrong, [{"y": wrong}]), [{"y": TORCH32}], None, **common)
    assert overturned["cause"] == "runtime" and "ONNX Runtime CPU kernel" in overturned["summary"]
    assert overturned["evidence"]["y"]["evaluator_vs_fp64"] < 1e-6
    unknown = second_opinion(_blame(wrong, [{"y": wrong}]), None, "no such op", **common)
    assert unknown["cause"] == "export" and "no such op" in unknown["second_opinion"]
    runtime = _blame(wrong, [{"y": TORCH32}])
    assert second_opinion(runtime, None, "unused", **common) is runtime


def test_precision_signature_needs_a_lower_format() -> None:
    assert precision_signature([{"y": TORCH32}], [{"y": TRUTH}]) is None
    assert precision_signature([{"y": _bf16(TORCH32)}], [{"y": TRUTH}])["evidence"] == "exact"
    # bf16 arithmetic whose outputs are not exactly bf16 values: the size of the error says it
    noisy = (TRUTH * (1 + 2.0**-9 * RNG.uniform(-1, 1, TRUTH.shape))).astype(np.float32)
    found = precision_signature([{"y": noisy}], [{"y": TRUTH}])
    assert found is not None and (found["format"], found["evidence"]) == ("bf16", "magnitude")
    assert precision_signature([{"y": _bf16(TORCH32)}], [{"y": TRUTH}], "bf16") is None


def test_v3_parity_is_upgraded_as_allclose_decided() -> None:
    v3 = {"passed": False, "rtol": 1e-3, "atol": 1e-5, "outputs": [{"name": "y"}], "problems": []}
    v4 = upgrade_parity(v3)
    assert (
        v4["verdicts"]["deciding"] == "allclose" and v4["verdicts"]["allclose"]["passed"] is False
    )
    assert v4["attribution"] is None and v4["outputs"][0]["noise_floor"] is None
    assert upgrade_parity(None) is None
