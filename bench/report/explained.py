"""A record's parity explanation as summary columns: the noise floor and the worst ratio of a
backend's error to it, both verdicts and the deciding one, batch consistency, attribution and
the first diverging node. Records before schema 4 have none of it: the columns stay empty."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.report.format import missing

Record = Mapping[str, Any]


def parity_columns(record: Record) -> dict[str, Any]:
    parity = record.get("parity") or {}
    outputs = [o for o in parity.get("outputs") or [] if not missing(o.get("floor_ratio"))]
    worst = max(outputs, key=lambda o: _number(o["floor_ratio"]), default=None)
    verdicts = parity.get("verdicts") or {}
    attribution = parity.get("attribution") or {}
    consistency = parity.get("batch_consistency") or {}
    return {
        "noise_floor": worst.get("noise_floor") if worst else None,
        "floor_ratio": _number(worst["floor_ratio"]) if worst else None,
        "allclose_passed": (verdicts.get("allclose") or {}).get("passed"),
        "noise_floor_passed": (verdicts.get("noise_floor") or {}).get("passed"),
        "deciding_verdict": verdicts.get("deciding"),
        "batch_consistent": consistency.get("passed") if consistency.get("checked") else None,
        "attribution": attribution.get("cause"),
        "first_diverging_node": divergence_label(parity.get("divergence")),
    }


def _number(value: Any) -> float:
    if isinstance(value, str):  # "inf" as JSON writes it
        return float(value)
    return float(value)


def divergence_label(divergence: Mapping[str, Any] | None) -> str | None:
    """`node_relu (Relu)`, `none: follows the file`, or None when not searched."""
    if not divergence:
        return None
    status = divergence.get("status")
    if status == "found":
        node = divergence.get("node") or {}
        return f"{node.get('name')} ({node.get('op_type')})"
    if status == "not_found":
        return "none: follows the reference"
    return str(status)


def verdicts_text(row: Mapping[str, Any]) -> str:
    """`allclose pass · floor FAIL*`: the star marks the verdict that set the status."""
    parts = []
    for key, label in (("allclose", "allclose"), ("noise_floor", "floor")):
        passed = row.get(f"{key}_passed")
        word = "–" if missing(passed) or passed is None else ("pass" if passed else "FAIL")
        parts.append(f"{label} {word}" + ("*" if row.get("deciding_verdict") == key else ""))
    return " · ".join(parts)


def consistency_text(value: Any) -> str:
    if missing(value) or value is None:
        return "–"
    return "same" if value else "DIFFERS"


def ratio_text(value: Any) -> str:
    """`0.36×`, `899×`, `inf`."""
    if missing(value):
        return "–"
    value = float(value)
    if value == float("inf"):
        return "inf"
    return f"{value:.0f}×" if value >= 100 else f"{value:.2g}×"


def text(value: Any) -> str:
    """A text column's value, a dash when missing."""
    return "–" if missing(value) or value is None or value == "" else str(value)
