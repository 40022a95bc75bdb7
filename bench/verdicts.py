"""Errors against the fp64 oracle, the noise floor, and the two parity verdicts (numpy only).

The error measure is normwise: max |actual - truth| / max |truth| over an output (one number
per output and input batch, worst batch kept). An elementwise relative error explodes where
the truth crosses zero (logits, residual sums, LayerNorm outputs) and would let one element
near zero decide; the normwise form is what floating-point error analysis bounds (a
backward-stable computation's error is a few unit roundoffs times the size of what it
computes), so it is comparable between a backend and PyTorch's own fp32 run.

The noise floor of an output is PyTorch fp32's own normwise error against the fp64 oracle,
never below fp32's unit roundoff (an fp32 output cannot be closer to the truth than its own
rounding). The noise-floor verdict passes an output when the backend's error against fp64 is
at most `NOISE_K` times that floor; README.md ("Parity") gives the measurements behind k.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: fp32 unit roundoff (2^-24): the smallest noise floor an fp32 output can have.
U32 = 2.0**-24
#: The noise-floor verdict's factor: a backend may be this many times farther from fp64 than
#: PyTorch fp32 is. Chosen from the built-in zoo (README.md, "Parity"): the worst ratio of
#: ort-cpu and openvino at fp32 was 13.5 (resnet_small on ort-cpu, 400 input seeds), most are
#: 0.5 to 3; bf16 rounding sits near 10^4 and a 1e-4 relative error in one element near 10^2.
NOISE_K = 32.0

Arrays = Mapping[str, np.ndarray]


def scaled_error(actual: Any, truth: Any) -> float:
    """max |actual - truth| / max |truth|: inf on a shape mismatch or a non-finite value
    where the truth is finite; integer and bool outputs are 0 when equal, else inf."""
    a, t = np.asarray(actual), np.asarray(truth)
    if a.shape != t.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    if a.dtype.kind not in "fc" or t.dtype.kind not in "fc":
        return 0.0 if np.array_equal(a, t) else float("inf")
    a64, t64 = a.astype(np.float64), t.astype(np.float64)
    finite = np.isfinite(t64)
    if not np.isfinite(a64[finite]).all() or (np.isnan(a64) != np.isnan(t64)).any():
        return float("inf")
    if not finite.any():
        return 0.0
    scale = float(np.abs(t64[finite]).max())
    diff = float(np.abs(a64[finite] - t64[finite]).max())
    return diff / scale if scale > 0 else diff


def worst_errors(actual: Sequence[Arrays], truth: Sequence[Arrays]) -> dict[str, float]:
    """Per output of `truth`, the worst `scaled_error` over the input batches (inf: missing)."""
    worst: dict[str, float] = {}
    for got, want in zip(actual, truth, strict=True):
        for name, value in want.items():
            error = scaled_error(got[name], value) if name in got else float("inf")
            worst[name] = max(worst.get(name, 0.0), error)
    return worst


def noise_floors(fp32: Sequence[Arrays], fp64: Sequence[Arrays]) -> dict[str, float]:
    """Each output's noise floor: PyTorch fp32's error against fp64, at least `U32`."""
    return {name: max(error, U32) for name, error in worst_errors(fp32, fp64).items()}


def allclose_fails(actual: Sequence[Arrays], truth: Sequence[Arrays], rtol: float,
                   atol: float) -> list[str]:  # fmt: skip
    """Outputs where some element of some batch is beyond atol + rtol |truth| (NaN included)."""
    failed = []
    for name in truth[0] if truth else ():
        for got, want in zip(actual, truth, strict=True):
            a, t = np.asarray(got.get(name)), np.asarray(want[name])
            if a.shape != t.shape or not np.all(np.abs(a.astype(np.float64) - t) <=
                                                atol + rtol * np.abs(t.astype(np.float64))):  # fmt: skip
                failed.append(name)
                break
    return failed


def beyond_floor(
    errors64: Mapping[str, float], floors: Mapping[str, float], k: float = NOISE_K
) -> list[str]:
    """Outputs whose error against fp64 exceeds k times their noise floor."""
    return [name for name, floor in floors.items() if not errors64.get(name, np.inf) <= k * floor]


def floor_ratios(errors64: Mapping[str, float], floors: Mapping[str, float]) -> dict[str, float]:
    """Each output's error against fp64 over its noise floor."""
    return {name: errors64.get(name, float("inf")) / floor for name, floor in floors.items()}


def deciding_verdict(precision: str, oracle_ok: bool, overridden: bool) -> tuple[str, str]:
    """(which verdict sets the cell's status, why). Explicit --rtol/--atol always win; the
    noise floor decides fp32 cells of models with an fp64 oracle; allclose decides the rest."""
    if overridden:
        return "allclose", "--rtol/--atol given: the fixed tolerance decides"
    if precision != "fp32":
        return "allclose", f"{precision}: the noise floor is measured at fp32"
    if not oracle_ok:
        return "allclose", "no fp64 oracle for this model"
    return "noise_floor", f"fp32 with an fp64 oracle: within {NOISE_K:g}x the noise floor"


def batch_consistency(
    alone: Sequence[Arrays],
    batched: Arrays,
    items: Sequence[int],
    floors: Mapping[str, float] | None,
    rtol: float,
    atol: float,
) -> dict[str, Any]:
    """Each item run alone against its row of the batched run: within k times the noise floor
    (normwise against the batched row) when there is one, else within rtol/atol."""
    worst: dict[str, float] = {}
    differ: dict[str, list[int]] = {}
    for item, outputs in zip(items, alone, strict=True):
        for name, value in batched.items():
            row = np.asarray(value)[item : item + 1]
            got = outputs.get(name)
            error = scaled_error(got, row) if got is not None else float("inf")
            worst[name] = max(worst.get(name, 0.0), error)
            if got is None:
                bad = True
            elif floors is not None and name in floors:
                bad = not error <= NOISE_K * floors[name]
            else:
                bad = bool(allclose_fails([{name: got}], [{name: row}], rtol, atol))
            if bad:
                differ.setdefault(name, []).append(item)
    problems = [f"{name}: item{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} run alone "
                f"differ{'' if len(bad) > 1 else 's'} from {'their rows' if len(bad) > 1 else 'its row'} "
                f"in the batch (worst error {worst[name]:.3g} of the output's scale)"
                for name, bad in differ.items()]  # fmt: skip
    rule = f"within {NOISE_K:g}x the noise floor" if floors else f"rtol={rtol:g} atol={atol:g}"
    return {"checked": True, "passed": not problems, "items": list(items), "rule": rule,
            "max_err": worst, "problems": problems}  # fmt: skip
