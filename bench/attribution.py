"""Whose fault a parity failure is (numpy only): export, runtime, precision or model.

The evidence is each side's normwise error (bench.verdicts.scaled_error) against PyTorch
fp32, the fp64 oracle and the ONNX file run in a reference that does not optimise (ONNX
Runtime on the CPU, every graph optimisation off). The rules, in order:

- model: the model's own fp32 noise floor already exceeds the fixed tolerance (PyTorch fp32
  fails allclose against fp64) and the backend is within k times that floor;
- export: the file itself disagrees with PyTorch under the failing verdict (the reference
  shares the backend's mistake), or the file's reference also gives an item different results
  alone and inside a batch;
- precision: the file agrees, the backend does not, and its outputs carry a lower format's
  signature (exactly bf16 or fp16 values, or elementwise errors of that format's size on most
  elements), while it was asked for fp32;
- runtime: the file agrees and the backend does not (its optimisations, precision or a kernel),
  batch mixing included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bench.verdicts import NOISE_K, U32, allclose_fails, beyond_floor, worst_errors

Arrays = Mapping[str, np.ndarray]
#: Lower formats a runtime may compute in, with their unit roundoff.
LOW_FORMATS = {"bf16": 2.0**-8, "fp16": 2.0**-11}
EXACT_SHARE = 0.99  # share of a backend's values exactly representable: that format's output


def _exact_share(values: np.ndarray, fmt: str) -> float:
    """Share of float32 values exactly representable in bf16 or fp16."""
    if fmt == "bf16":
        return float(np.mean((values.view(np.uint32) & 0xFFFF) == 0))
    with np.errstate(over="ignore"):
        return float(np.mean(values.astype(np.float16).astype(np.float32) == values))


def precision_signature(
    backend: Sequence[Arrays], truth: Sequence[Arrays], precision: str = "fp32"
) -> dict[str, Any] | None:
    """The lower format the backend's outputs look computed in, with the evidence, or None.
    Only for fp32 cells; integer outputs and outputs with fewer than 8 values say nothing."""
    if precision != "fp32":
        return None
    got, want = [], []
    for outputs, reference in zip(backend, truth, strict=True):
        for name, value in reference.items():
            a, t = np.asarray(outputs.get(name)), np.asarray(value)
            if a.shape == t.shape and a.dtype == np.float32 and t.dtype.kind == "f":
                got.append(a.ravel())
                want.append(t.astype(np.float64).ravel())
    if not got:
        return None
    a, t = np.concatenate(got), np.concatenate(want)
    keep = np.isfinite(a) & np.isfinite(t) & (a != 0)
    if keep.sum() < 8:
        return None
    a, t = a[keep], t[keep]
    for fmt in LOW_FORMATS:  # bf16 first: a bf16 value is an fp16 value too
        share = _exact_share(a, fmt)
        if share >= EXACT_SHARE and _exact_share(t.astype(np.float32), fmt) < 0.5:
            return {"format": fmt, "evidence": "exact", "share": share,
                    "text": f"{share:.0%} of the outputs are exactly {fmt} values"}  # fmt: skip
    big = np.abs(t) >= 1e-2 * np.abs(t).max()
    rel = np.abs(a[big] - t[big]) / np.abs(t[big])
    median, pervasive = float(np.median(rel)), float(np.mean(rel > 64 * U32))
    for fmt, unit in LOW_FORMATS.items():
        if unit / 4 <= median <= 2 * unit and pervasive >= 0.5:
            return {"format": fmt, "evidence": "magnitude", "median_rel_err": median,
                    "text": f"median elementwise error {median:.2g} on {pervasive:.0%} of the "
                    f"outputs, the size of {fmt} rounding (unit roundoff {unit:.2g})"}  # fmt: skip
    return None


def _fails(
    actual: Sequence[Arrays],
    criterion: str,
    torch32: Sequence[Arrays],
    fp64: Sequence[Arrays] | None,
    floors: Mapping[str, float] | None,
    rtol: float,
    atol: float,
) -> list[str]:
    if criterion == "noise_floor" and fp64 is not None and floors is not None:
        return beyond_floor(worst_errors(actual, fp64), floors)
    return allclose_fails(actual, torch32, rtol, atol)


def evidence(
    torch32: Sequence[Arrays],
    fp64: Sequence[Arrays] | None,
    backend: Sequence[Arrays],
    file_ref: Sequence[Arrays] | None,
) -> dict[str, dict[str, float | None]]:
    """Per output, every side's normwise error against every other that was run."""
    none: dict[str, float] = {}
    pairs = {
        "torch_fp32_vs_fp64": worst_errors(torch32, fp64) if fp64 is not None else none,
        "file_vs_torch_fp32": worst_errors(file_ref, torch32) if file_ref is not None else none,
        "file_vs_fp64": worst_errors(file_ref, fp64) if file_ref and fp64 is not None else none,
        "backend_vs_torch_fp32": worst_errors(backend, torch32),
        "backend_vs_fp64": worst_errors(backend, fp64) if fp64 is not None else none,
        "backend_vs_file": worst_errors(backend, file_ref) if file_ref is not None else none,
    }
    return {name: {key: found.get(name) for key, found in pairs.items()} for name in torch32[0]}


def attribute(
    *,
    criterion: str,
    rtol: float,
    atol: float,
    precision: str,
    torch32: Sequence[Arrays],
    fp64: Sequence[Arrays] | None,
    floors: Mapping[str, float] | None,
    backend: Sequence[Arrays],
    file_ref: Sequence[Arrays] | None,
    file_ref_problem: str | None = None,
    backend_consistent: bool | None = None,
    file_consistent: bool | None = None,
    reference_name: str = "the file's reference",
    context: str = "the ONNX file agrees with PyTorch",
) -> dict[str, Any]:
    """The cause of a failure under `criterion` ("noise_floor" or "allclose"), with evidence."""
    found = evidence(torch32, fp64, backend, file_ref)
    result: dict[str, Any] = {"cause": "runtime", "criterion": criterion,
                              "reference": reference_name, "evidence": found}  # fmt: skip

    def done(cause: str, summary: str) -> dict[str, Any]:
        return {**result, "cause": cause, "summary": summary}

    if fp64 is not None and floors is not None and backend_consistent is not False:
        ill = allclose_fails(torch32, fp64, rtol, atol)
        if ill and not beyond_floor(worst_errors(backend, fp64), floors):
            worst = max(floors[name] for name in ill)
            return done("model", f"the model is ill-conditioned at fp32: PyTorch fp32 is itself "
                        f"{worst:.2g} of the output's scale from fp64, beyond rtol={rtol:g} "
                        f"atol={atol:g}, and the backend is within {NOISE_K:g}x that noise "
                        f"floor on {', '.join(ill)}")  # fmt: skip
    if file_ref is None and file_ref_problem:
        return done("unknown", f"{reference_name} could not run: {file_ref_problem}")
    if file_ref is not None:
        bad = _fails(file_ref, criterion, torch32, fp64, floors, rtol, atol)
        if bad:
            return done("export", f"the ONNX file itself disagrees with PyTorch: {reference_name} "
                        f"gives {_worst_text(found, bad, 'file')} on {', '.join(bad)}; the "
                        "backend follows the file (exporter or opset at fault)")  # fmt: skip
        if backend_consistent is False and file_consistent is False:
            return done("export", "the ONNX file itself gives an item different results alone "
                        f"and inside a batch ({reference_name} does too): an export that fixed "
                        "or mixes the batch")  # fmt: skip
    failing = _fails(backend, criterion, torch32, fp64, floors, rtol, atol) or list(found)
    wrong = f"{_worst_text(found, failing, 'backend')} on {', '.join(failing)}"
    if backend_consistent is False:
        return done("runtime", f"{context}; the backend disagrees ({wrong}) and gives an item "
                    "different results alone and inside a batch: its result depends on the "
                    "other items or the batch layout")  # fmt: skip
    signature = precision_signature(backend, fp64 if fp64 is not None else torch32, precision)
    if signature is not None:
        result["precision_signature"] = signature
        return done("precision", f"{context}; the backend computes in {signature['format']}, "
                    f"not the fp32 asked: {signature['text']} ({wrong})")  # fmt: skip
    return done(
        "runtime",
        f"{context}; the backend disagrees: {wrong} (its optimisations, precision or a kernel)",
    )


def _worst_text(found: Mapping[str, Mapping[str, float | None]], names: Sequence[str],
                side: str) -> str:  # fmt: skip
    """`an error of 3.1e-03 of the output's scale against fp64` for the worst of `names`."""
    for key, against in ((f"{side}_vs_fp64", "fp64"), (f"{side}_vs_torch_fp32", "PyTorch fp32")):
        values = [v for n in names if (v := (found.get(n) or {}).get(key)) is not None]
        if values:
            worst = max(values)
            if not np.isfinite(worst):
                return f"NaN, Inf or a wrong shape where {against} is finite"
            return f"an error of {worst:.2g} of the output's scale against {against}"
    return "outputs that differ"


def second_opinion(
    result: dict[str, Any],
    evaluator: Sequence[Arrays] | None,
    problem: str | None,
    *,
    torch32: Sequence[Arrays],
    fp64: Sequence[Arrays] | None,
    floors: Mapping[str, float] | None,
    rtol: float,
    atol: float,
) -> dict[str, Any]:
    """An `export` verdict checked against onnx's ReferenceEvaluator: when it reads the same
    file as PyTorch does, the unoptimised ONNX Runtime was wrong, not the file (`runtime`)."""
    if result.get("cause") != "export":
        return result
    if evaluator is None:
        return {**result, "second_opinion": f"ReferenceEvaluator could not run: {problem}"}
    errors = worst_errors(evaluator, fp64) if fp64 is not None else worst_errors(evaluator, torch32)
    for name, error in errors.items():
        result["evidence"].setdefault(name, {})["evaluator_vs_fp64" if fp64 is not None else
                                                "evaluator_vs_torch_fp32"] = error  # fmt: skip
    if _fails(evaluator, result["criterion"], torch32, fp64, floors, rtol, atol):
        return {**result, "second_opinion": "onnx's ReferenceEvaluator reads the file the same "
                "way: the file is wrong"}  # fmt: skip
    return {**result, "cause": "runtime", "second_opinion": "onnx's ReferenceEvaluator agrees "
            "with PyTorch on this file",
            "summary": "the ONNX file is right (onnx's ReferenceEvaluator agrees with PyTorch) "
            "but ONNX Runtime, even without optimisations, is not: an ONNX Runtime CPU kernel "
            "this backend shares"}  # fmt: skip
