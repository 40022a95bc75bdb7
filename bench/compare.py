"""Compare runs (machines, releases, settings) cell by cell, with statistics on raw samples.

Pure functions over records: no I/O, no pandas. The time ratio is other / baseline median
(above 1: slower). A difference is significant when the Mann-Whitney U test gives p < ALPHA
*and* the ratio's confidence interval, built from both medians' distribution-free 95% CIs,
excludes 1; otherwise it is "not significant", however small p is on 20,000 samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.stats import median_ci

ALPHA = 0.01
DRIFT_FACTOR = 10.0
JOIN_KEYS = ("model", "backend", "exporter", "opset_requested", "batch_size", "dims", "precision",
             "mode")  # fmt: skip
ENV_FIELDS = ("host", "cpu_model", "logical_cores", "physical_cores", "memory_gib", "gpus",
              "platform", "python", "bench_commit")  # fmt: skip


@dataclass(frozen=True)
class Run:
    """One run folder's content."""

    name: str
    records: list[dict[str, Any]]
    env: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)  # run.json's, when present


@dataclass(frozen=True)
class CellComparison:
    """One joined cell: baseline against another run."""

    key: tuple
    other: str
    base_median_us: float | None
    other_median_us: float | None
    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    p_value: float | None
    verdict: str  # "faster" | "slower" | "not significant" | "not measured"
    comparable: bool
    not_comparable_reason: str | None
    parity_drift: str | None
    base_status: str
    other_status: str


@dataclass
class Comparison:
    """Everything `compare` found."""

    baseline: str
    others: list[str]
    cells: list[CellComparison] = field(default_factory=list)
    geomeans: dict[tuple[str, str], float] = field(default_factory=dict)  # (other, backend)
    env_differences: dict[str, list[tuple[str, Any, Any]]] = field(default_factory=dict)
    only_in: dict[str, list[tuple]] = field(default_factory=dict)


def _ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based) with ties shared, and the tie group sizes."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average = ends - (counts - 1) / 2.0
    return average[inverse], counts


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, tie-corrected)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        return math.nan
    ranks, ties = _ranks(np.concatenate([x, y]))
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    mean = n1 * n2 / 2.0
    tie_term = float((ties**3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:
        return 1.0
    z = (abs(u1 - mean) - 0.5) / math.sqrt(variance)
    return float(math.erfc(max(z, 0.0) / math.sqrt(2.0)))


def _timed(record: dict[str, Any]) -> dict[str, Any] | None:
    return (record.get("latency") or {}).get("inference") or record.get("throughput")


def _key(record: dict[str, Any]) -> tuple:
    defaults = {"mode": "latency", "dims": {}}
    values = [record.get(k, defaults.get(k)) for k in JOIN_KEYS]
    values[JOIN_KEYS.index("dims")] = tuple(sorted((values[JOIN_KEYS.index("dims")] or {}).items()))
    return tuple(values)


def _worst_error(record: dict[str, Any]) -> float | None:
    outputs = (record.get("parity") or {}).get("outputs") or []
    errors = [o["max_abs_err"] for o in outputs if o.get("max_abs_err") is not None]
    return max(errors) if errors else None


def parity_drift(base: dict[str, Any], other: dict[str, Any]) -> str | None:
    """A changed verdict, or an error that grew more than tenfold; None when stable."""
    before = (base.get("parity") or {}).get("passed")
    after = (other.get("parity") or {}).get("passed")
    if before is not None and after is not None and before != after:
        return "parity pass -> FAIL" if before else "parity FAIL -> pass"
    e0, e1 = _worst_error(base), _worst_error(other)
    if e0 is not None and e1 is not None and e1 > DRIFT_FACTOR * max(e0, 1e-9):
        return f"max abs error grew {e1 / max(e0, 1e-12):.0f}x ({e0:.2g} -> {e1:.2g})"
    return None


def _comparability(base: dict[str, Any], other: dict[str, Any]) -> str | None:
    if base.get("opset_actual") != other.get("opset_actual"):
        return f"opset written {base.get('opset_actual')} vs {other.get('opset_actual')}"
    h0 = (base.get("export") or {}).get("sha256")
    h1 = (other.get("export") or {}).get("sha256")
    if h0 != h1:
        return "different ONNX file (sha256)"
    return None


def compare_cell(base: dict[str, Any], other: dict[str, Any], other_name: str) -> CellComparison:
    """Join one cell of the baseline with the same cell of another run."""
    reason = _comparability(base, other)
    t0, t1 = _timed(base), _timed(other)
    drift = parity_drift(base, other)
    common = dict(
        key=_key(base), other=other_name, comparable=reason is None, not_comparable_reason=reason,
        parity_drift=drift, base_status=base["status"], other_status=other["status"],
    )  # fmt: skip
    if not t0 or not t1 or not t0.get("samples_us") or not t1.get("samples_us"):
        return CellComparison(base_median_us=None, other_median_us=None, ratio=None,
                              ratio_low=None, ratio_high=None, p_value=None,
                              verdict="not measured", **common)  # fmt: skip
    s0, s1 = np.asarray(t0["samples_us"]), np.asarray(t1["samples_us"])
    m0, m1 = float(np.median(s0)), float(np.median(s1))
    ci0, ci1 = median_ci(s0), median_ci(s1)
    ratio = m1 / m0
    low = ci1[0] / ci0[1] if ci0 and ci1 else None
    high = ci1[1] / ci0[0] if ci0 and ci1 else None
    p = mann_whitney_p(s0, s1)
    significant = p < ALPHA and low is not None and high is not None and (low > 1 or high < 1)
    verdict = ("slower" if ratio > 1 else "faster") if significant else "not significant"
    return CellComparison(base_median_us=m0, other_median_us=m1, ratio=ratio, ratio_low=low,
                          ratio_high=high, p_value=p, verdict=verdict, **common)  # fmt: skip


CONFIG_FIELDS = ("threads", "backend_options", "mode", "requests", "timing", "exporter")


def env_differences(
    base: dict[str, Any],
    other: dict[str, Any],
    base_config: dict[str, Any] | None = None,
    other_config: dict[str, Any] | None = None,
) -> list[tuple[str, Any, Any]]:
    """(field, baseline value, other value) for every machine, version or run setting that
    differs: the reasons two runs may disagree besides the change under test."""
    found = [(f, base.get(f), other.get(f)) for f in ENV_FIELDS if base.get(f) != other.get(f)]
    v0, v1 = base.get("versions") or {}, other.get("versions") or {}
    for name in sorted(set(v0) | set(v1)):
        if v0.get(name) != v1.get(name):
            found.append((name, v0.get(name), v1.get(name)))
    c0, c1 = base_config or {}, other_config or {}
    if c0 and c1:
        found += [
            (f"config.{f}", c0.get(f), c1.get(f)) for f in CONFIG_FIELDS if c0.get(f) != c1.get(f)
        ]
    return found


def compare(runs: Sequence[Run], baseline: int = 0) -> Comparison:
    """Compare every run with `runs[baseline]`, cell by cell."""
    base = runs[baseline]
    others = [r for i, r in enumerate(runs) if i != baseline]
    result = Comparison(baseline=base.name, others=[r.name for r in others])
    base_cells = {_key(r): r for r in base.records}
    for run in others:
        cells = {_key(r): r for r in run.records}
        result.env_differences[run.name] = env_differences(
            base.env, run.env, base.config, run.config
        )
        result.only_in[base.name] = [k for k in base_cells if k not in cells]
        result.only_in[run.name] = [k for k in cells if k not in base_cells]
        for key, record in base_cells.items():
            if key in cells:
                result.cells.append(compare_cell(record, cells[key], run.name))
        by_backend: dict[str, list[float]] = {}
        for cell in result.cells:
            if cell.other == run.name and cell.comparable and cell.ratio:
                by_backend.setdefault(cell.key[1], []).append(math.log(cell.ratio))
        for backend, logs in by_backend.items():
            result.geomeans[(run.name, backend)] = math.exp(sum(logs) / len(logs))
    return result


def cell_label(key: tuple) -> str:
    """A readable name for a join key: model · backend · export · batch and dims · precision."""
    model, backend, exporter, opset, batch, dims, precision, mode = key
    export = f"{exporter} op{opset}" if opset is not None else (exporter or "eager")
    extra = f" {mode}" if mode != "latency" else ""
    sizes = "".join(f" {name}={size}" for name, size in dims)
    return f"{model} · {backend} · {export} · b{batch}{sizes} · {precision}{extra}"


def regressions(comparison: Comparison, percent: float) -> list[str]:
    """Why a CI gate should fail: significant slowdowns above `percent`, parity pass -> fail."""
    reasons = []
    for cell in comparison.cells:
        label = cell_label(cell.key)
        if cell.parity_drift and cell.parity_drift.startswith("parity pass -> FAIL"):
            reasons.append(f"{label} in {cell.other}: {cell.parity_drift}")
        if (cell.comparable and cell.verdict == "slower" and cell.ratio
                and cell.ratio > 1 + percent / 100.0):  # fmt: skip
            reasons.append(
                f"{label} in {cell.other}: {cell.ratio:.3f}x the baseline's median "
                f"(+{(cell.ratio - 1) * 100:.1f}% > {percent:g}%, p={cell.p_value:.2g})"
            )
    return reasons
