"""One cell's parity record from arrays (numpy only): the fixed allclose verdict of
bench.parity, the fp64 errors and noise floors of bench.verdicts, which verdict decides, and
the batch-consistency result folded in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.parity import ParityReport
from bench.verdicts import (
    NOISE_K,
    beyond_floor,
    deciding_verdict,
    floor_ratios,
    noise_floors,
    worst_errors,
)

Arrays = Mapping[str, np.ndarray]


@dataclass
class Assessment:
    """The parity record so far, and what the checks after it need."""

    parity: dict[str, Any]
    floors: dict[str, float] | None
    deciding: str
    allclose_passed: bool
    noise_floor_passed: bool | None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.parity["passed"])

    def failing_criterion(self) -> str | None:
        """The verdict a failure is attributed under: the deciding one when it failed, else the
        other one that failed; None when both passed."""
        failed = {"allclose": not self.allclose_passed,
                  "noise_floor": self.noise_floor_passed is False}  # fmt: skip
        if failed[self.deciding]:
            return self.deciding
        return next((name for name, bad in failed.items() if bad), None)


def _floor_problem(name: str, error: float, floor: float, allclose_problem: str | None) -> str:
    if allclose_problem and "elements beyond" not in allclose_problem:
        return allclose_problem  # NaN, Inf, shape or dtype: that says it best
    ratio = error / floor
    times = f"{ratio:.0f}" if ratio >= 100 else f"{ratio:.1f}"
    return (f"{name}: error {error:.3g} of the output's scale against fp64 is {times}x its "
            f"noise floor {floor:.2g} (limit {NOISE_K:g}x)")  # fmt: skip


def assess(
    report: ParityReport,
    outputs: Sequence[Arrays],
    torch32: Sequence[Arrays],
    fp64: Sequence[Arrays] | None,
    oracle: dict[str, Any],
    precision: str,
    overridden: bool,
) -> Assessment:
    """Both verdicts over every output and input batch, and the one that sets the status."""
    parity = report.to_record()
    floors = noise_floors(torch32, fp64) if fp64 is not None else None
    errors32 = worst_errors(outputs, torch32)
    errors64 = worst_errors(outputs, fp64) if fp64 is not None else {}
    ratios = floor_ratios(errors64, floors) if floors is not None else {}
    for entry in parity["outputs"]:
        name = entry["name"]
        entry.update(err_vs_fp32=errors32.get(name), err_vs_fp64=errors64.get(name),
                     noise_floor=(floors or {}).get(name), floor_ratio=ratios.get(name))  # fmt: skip
    deciding, why = deciding_verdict(precision, fp64 is not None, overridden)
    floor_passed: bool | None = None
    floor_reason = None
    floor_problems: list[str] = []
    if floors is None:
        floor_reason = oracle.get("reason") or "no fp64 oracle"
    elif precision != "fp32":
        floor_reason = f"{precision} cell: the noise floor is PyTorch's at fp32"
    else:
        bad = beyond_floor(errors64, floors)
        floor_passed = not bad
        by_name = {o["name"]: o.get("problem") for o in parity["outputs"]}
        floor_problems = [_floor_problem(n, errors64.get(n, float("inf")), floors[n],
                                         by_name.get(n)) for n in bad]  # fmt: skip
    worst = max(ratios.values()) if ratios else None
    parity["verdicts"] = {
        "allclose": {"passed": report.passed, "rtol": report.rtol, "atol": report.atol},
        "noise_floor": {
            "passed": floor_passed,
            "k": NOISE_K,
            "worst_ratio": worst,
            "reason": floor_reason,
        },
        "deciding": deciding,
        "why": why,
    }
    parity.update(noise_floor=floors, oracle=oracle, batch_consistency=None, attribution=None,
                  divergence=None)  # fmt: skip
    if deciding == "noise_floor":
        missing = [p for p in report.problems if p.startswith("missing outputs")]
        problems = missing + floor_problems
    else:
        problems = list(report.problems)
    parity["passed"] = not problems
    parity["problems"] = problems
    return Assessment(parity, floors, deciding, report.passed, floor_passed, problems)


def fold_consistency(assessment: Assessment, consistency: dict[str, Any]) -> None:
    """A cell whose items differ alone and inside a batch fails parity."""
    parity = assessment.parity
    parity["batch_consistency"] = consistency
    if consistency.get("passed") is False:
        parity["problems"] = [*parity["problems"], *consistency.get("problems", [])]
        parity["passed"] = False
