"""Numeric parity of a backend's outputs against the PyTorch reference (numpy only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

REL_EPSILON = 1e-6  # floor of |expected| in the relative error, so zeros do not divide


@dataclass(frozen=True)
class OutputParity:
    """How one output compares with its reference."""

    name: str
    passed: bool
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    mean_abs_err: float | None = None
    cosine: float | None = None
    frac_beyond_tol: float | None = None
    tol_ratio: float | None = None  # max |a - e| / (atol + rtol |e|): <= 1 passes
    nan_count: int = 0
    inf_count: int = 0
    argmax_agreement: float | None = None
    problem: str | None = None


@dataclass(frozen=True)
class ParityReport:
    """Parity of every output over every compared input batch (worst case kept)."""

    passed: bool
    rtol: float
    atol: float
    outputs: list[OutputParity] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_record(self) -> dict:
        return asdict(self)


def compare_output(
    name: str,
    actual: np.ndarray,
    expected: np.ndarray,
    rtol: float,
    atol: float,
    logits: bool = False,
) -> OutputParity:
    """Metrics for one output; fails on shape or dtype-kind mismatch and on NaN/Inf."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return OutputParity(
            name, False, problem=f"{name}: shape {actual.shape}, expected {expected.shape}"
        )
    if actual.dtype.kind != expected.dtype.kind:
        return OutputParity(
            name, False, problem=f"{name}: dtype {actual.dtype}, expected {expected.dtype}"
        )
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    nan_count = int(np.isnan(a).sum())
    inf_count = int(np.isinf(a).sum())
    if a.size == 0:
        return OutputParity(name, True, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    finite = np.isfinite(a) & np.isfinite(e)
    diff = np.abs(a - e)
    diff_f = diff[finite] if finite.any() else np.zeros(1)
    rel = diff_f / np.maximum(np.abs(e[finite]), REL_EPSILON) if finite.any() else np.zeros(1)
    allowed = atol + rtol * np.abs(e)
    beyond = ~(diff <= allowed)  # NaN counts as beyond
    tol_ratio = float((diff[finite] / allowed[finite]).max()) if finite.any() else None
    norm = np.linalg.norm(a[finite]) * np.linalg.norm(e[finite])
    cosine = (
        float(np.dot(a[finite], e[finite]) / norm)
        if norm > 0
        else float(np.array_equal(a[finite], e[finite]))
    )
    argmax = None
    if logits and a.ndim >= 1 and a.shape[-1] > 0 and nan_count == 0:
        argmax = float(np.mean(np.argmax(a, axis=-1) == np.argmax(e, axis=-1)))
    problem = None
    if nan_count or inf_count:
        problem = f"{name}: {nan_count} NaN and {inf_count} Inf values in the backend's output"
    passed = problem is None and not beyond.any()
    if problem is None and not passed:
        problem = (
            f"{name}: {int(beyond.sum())} of {a.size} elements beyond rtol={rtol:g} atol={atol:g}"
            f" (max abs err {float(diff_f.max()):.3g})"
        )
    return OutputParity(
        name=name,
        passed=passed,
        max_abs_err=float(diff_f.max()),
        max_rel_err=float(rel.max()),
        mean_abs_err=float(diff_f.mean()),
        cosine=cosine,
        frac_beyond_tol=float(beyond.mean()),
        tol_ratio=tol_ratio,
        nan_count=nan_count,
        inf_count=inf_count,
        argmax_agreement=argmax,
        problem=problem,
    )


def _worst(results: Sequence[OutputParity]) -> OutputParity:
    """Merge one output's results over several input batches, keeping the worst figures."""
    first = results[0]
    failed = [r for r in results if not r.passed]

    def pick(attr: str, worst=max):
        values = [getattr(r, attr) for r in results if getattr(r, attr) is not None]
        return worst(values) if values else None

    return OutputParity(
        name=first.name,
        passed=not failed,
        max_abs_err=pick("max_abs_err"),
        max_rel_err=pick("max_rel_err"),
        mean_abs_err=pick("mean_abs_err"),
        cosine=pick("cosine", min),
        frac_beyond_tol=pick("frac_beyond_tol"),
        tol_ratio=pick("tol_ratio"),
        nan_count=sum(r.nan_count for r in results),
        inf_count=sum(r.inf_count for r in results),
        argmax_agreement=pick("argmax_agreement", min),
        problem=failed[0].problem if failed else None,
    )


def compare_outputs(
    actual_batches: Sequence[Mapping[str, np.ndarray]],
    expected_batches: Sequence[Mapping[str, np.ndarray]],
    rtol: float,
    atol: float,
    logits_outputs: Sequence[str] = (),
) -> ParityReport:
    """Compare every output of every input batch; the cell passes only if all do."""
    problems: list[str] = []
    per_output: dict[str, list[OutputParity]] = {}
    for actual, expected in zip(actual_batches, expected_batches, strict=True):
        missing = sorted(set(expected) - set(actual))
        if missing:
            problems.append(f"missing outputs: {', '.join(missing)}")
        for name, reference in expected.items():
            if name in actual:
                result = compare_output(
                    name, actual[name], reference, rtol, atol, name in logits_outputs
                )
                per_output.setdefault(name, []).append(result)
    merged = [_worst(results) for results in per_output.values()]
    problems.extend(r.problem for r in merged if r.problem)
    problems = list(dict.fromkeys(problems))
    return ParityReport(
        passed=not problems, rtol=rtol, atol=atol, outputs=merged, problems=problems
    )
