"""One model and backend across the runs of the history: a series per cell key (exporter,
opset, batch size, dims, precision, mode), each point a run, with what changed since the
series' previous run: a parity verdict that flipped or an error that grew (bench.comparison's
`parity_drift`), and a latency step that bench.comparison resolves on the trial level
(`slower` / `faster`: p < 0.01, the interval excludes 1, at least the detectable change).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.comparison import compare_cell

SERIES_KEY = ("exporter", "opset_requested", "batch_size", "dims", "precision", "mode")


@dataclass(frozen=True)
class Point:
    """One run's value of one series, and what changed since the series' previous point."""

    series: str
    seq: int
    run_id: str
    status: str
    value: float | None
    parity_passed: bool | None
    parity_change: str | None  # "parity pass -> FAIL", ...
    step: str | None  # "slower" | "faster" | "unchanged" | "cannot resolve" | ... ; None: first
    ratio: float | None  # this run's latency / the previous run's (trial level)
    p_value: float | None


def series_label(row: dict[str, Any]) -> str:
    """`auto op17 b1 fp32`, with dims and a mode other than latency when present."""
    export = f"{row['exporter'] or 'eager'}" + (
        f" op{row['opset_requested']}" if row.get("opset_requested") is not None else ""
    )
    dims = f" {row['dims']}" if row.get("dims") else ""
    mode = f" {row['mode']}" if row.get("mode") not in (None, "latency") else ""
    return f"{export} b{row['batch_size']}{dims} {row['precision']}{mode}"


def points(rows: Sequence[dict[str, Any]], metric: str) -> list[Point]:
    """Every (run, series) point of `rows` (cells of one model and backend, in run order)."""
    found: list[Point] = []
    last: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = tuple(row.get(k) for k in SERIES_KEY)
        record = json.loads(row["record_json"])
        step = ratio = p_value = drift = None
        before = last.get(key)
        if before is not None:
            cell = compare_cell(json.loads(before["record_json"]), record, row["run_id"])
            drift = cell.parity_drift
            step = (
                cell.verdict if cell.comparable else f"not comparable: {cell.not_comparable_reason}"
            )
            ratio, p_value = cell.ratio, cell.p_value
        passed = row.get("parity_passed")
        found.append(Point(
            series=series_label(row), seq=int(row["seq"]), run_id=str(row["run_id"]),
            status=str(row["status"]), value=row.get(metric),
            parity_passed=None if passed is None else bool(passed), parity_change=drift,
            step=step, ratio=ratio, p_value=p_value,
        ))  # fmt: skip
        last[key] = row
    return found


def significant(point: Point) -> bool:
    """A step the trial-level test resolves, or a parity change."""
    return point.step in ("slower", "faster") or point.parity_change is not None


HEADERS = ["run", "#", "cell", "status", "value", "parity", "change since the previous run"]


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def change_text(point: Point) -> str:
    """The step and the parity change, as one cell of the table."""
    parts = []
    if point.step is not None:
        ratio = f" {point.ratio:.3f}x" if point.ratio is not None else ""
        p = f" p={point.p_value:.2g}" if point.p_value is not None else ""
        parts.append(f"latency {point.step}{ratio}{p}".rstrip())
    if point.parity_change:
        parts.append(point.parity_change)
    return "; ".join(parts) or "-"


def table_rows(found: Sequence[Point]) -> list[list[str]]:
    """The printed and HTML table: one row per (run, series), significant changes marked."""
    rows = []
    for point in found:
        parity = "-" if point.parity_passed is None else ("pass" if point.parity_passed else "FAIL")
        mark = " <<" if significant(point) else ""
        rows.append([point.run_id, str(point.seq), point.series, point.status,
                     _value(point.value), parity, change_text(point) + mark])  # fmt: skip
    return rows
