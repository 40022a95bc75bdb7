"""summary_frame: one row per cell, the table every report is built from.

Control records (`kind: "control"`) are not cells: they never appear here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bench.errors import meaningful_line
from bench.report import fields
from bench.report.explained import parity_columns
from bench.report.format import dims_text, missing

KEY_COLUMNS = [
    "model",
    "backend",
    "exporter",
    "opset_requested",
    "opset_actual",
    "batch_size",
    "precision",
]


def _worst_parity(record: Mapping[str, Any]) -> dict[str, Any]:
    parity = record.get("parity") or {}
    outputs = parity.get("outputs") or []

    def worst(key: str, pick=max):
        values = [o[key] for o in outputs if o.get(key) is not None]
        return pick(values) if values else None

    return {
        "parity_passed": parity.get("passed"),
        "max_abs_err": worst("max_abs_err"),
        "max_rel_err": worst("max_rel_err"),
        "mean_abs_err": worst("mean_abs_err"),
        "cosine": worst("cosine", min),
        "frac_beyond_tol": worst("frac_beyond_tol"),
        "tol_ratio": worst("tol_ratio"),
        "nan_inf": sum((o.get("nan_count") or 0) + (o.get("inf_count") or 0) for o in outputs),
        "argmax_agreement": worst("argmax_agreement", min),
        "rtol": parity.get("rtol"),
        "atol": parity.get("atol"),
    }


def _timing(block: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    block = block or {}
    interval = fields.interval_us(block)
    return {
        f"{prefix}center_us": fields.center_us(block),
        f"{prefix}ci95_low_us": interval[0] if interval else None,
        f"{prefix}ci95_high_us": interval[1] if interval else None,
        f"{prefix}interval_scope": fields.interval_scope(block),
    }


def _same_graph_notes(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """ "same graph as op17" for cells whose ONNX graph (hash ignoring the opset) equals that
    of another cell of the same model, backend, batch, dims, precision and mode."""

    def opset(r: Mapping[str, Any]) -> Any:
        return (
            r.get("opset_actual")
            if not missing(r.get("opset_actual"))
            else r.get("opset_requested")
        )

    def group(r: Mapping[str, Any]) -> tuple:
        return (r["model"], r["backend"], r["batch_size"], dims_text(r.get("dims")),
                r["precision"], r.get("mode", "latency"), fields.graph_sha(r))  # fmt: skip

    notes = []
    for record in records:
        twins = sorted(
            {int(opset(o)) for o in records
             if fields.graph_sha(record) and group(o) == group(record)
             and not missing(opset(o)) and opset(o) != opset(record)}
        )  # fmt: skip
        notes.append("same graph as " + ", ".join(f"op{o}" for o in twins) if twins else "")
    return notes


def summary_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per cell: keys, status, latency statistics, parity, speedup over torch."""
    cells = fields.cell_records(records)
    base = fields.baselines(cells)
    rows = []
    for record, same_graph in zip(cells, _same_graph_notes(cells), strict=True):
        latency = fields.timed_block(record) or {}
        tput = record.get("throughput") or {}
        settings = record.get("settings") or {}
        speedup, speedup_contended = fields.speedup(record, base)
        rows.append(
            {
                "cell_id": record.get("cell_id"),
                **{key: record.get(key) for key in KEY_COLUMNS},
                "backend": fields.backend_label(record),
                "target": record.get("target"),
                "host": record.get("host"),
                "dims": dims_text(record.get("dims")),
                "exporter_used": record.get("exporter_used"),
                "status": record["status"],
                **_timing(latency),
                "n_trials": latency.get("n_trials"),
                "contended_trials": fields.contended_trials(record),
                "p50_us": latency.get("p50_us"),
                "mean_us": latency.get("mean_us"),
                "std_us": latency.get("std_us"),
                "min_us": latency.get("min_us"),
                "p90_us": latency.get("p90_us"),
                "p95_us": latency.get("p95_us"),
                "p99_us": latency.get("p99_us"),
                "max_us": latency.get("max_us"),
                "n_samples": latency.get("n"),
                "stop_reason": latency.get("stop_reason"),
                "mode": record.get("mode", "latency"),
                "requests": tput.get("requests"),
                "throughput_items_per_s": fields.items_per_s(record),
                **_timing(fields.timed_block(record, "end_to_end"), "e2e_"),
                "e2e_p50_us": ((record.get("latency") or {}).get("end_to_end") or {}).get("p50_us"),
                "load_s": (record.get("cold_start") or {}).get("load_s"),
                "export_s": (record.get("export") or {}).get("export_s"),
                "export_cached": (record.get("export") or {}).get("cached"),
                "graph_sha256": fields.graph_sha(record),
                "same_graph": same_graph,
                "first_run_ms": (record.get("cold_start") or {}).get("first_run_ms"),
                "peak_rss_mb": (record.get("memory") or {}).get("peak_rss_mb"),
                "effective_precision": settings.get("precision"),
                **_worst_parity(record),
                **parity_columns(record),
                "contended": fields.contended(record),
                "warnings": "; ".join(record.get("warnings") or []),
                # the line that says what went wrong (a runtime's source location skipped)
                "reason": meaningful_line(record.get("reason")),
                # items/s over the torch baseline's at the same model, batch, dims, precision
                # (in latency mode the ratio of centers); flagged when either side was
                # measured while other processes held the CPU
                "speedup_vs_torch": speedup,
                "speedup_contended": speedup_contended,
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for column in ("opset_requested", "opset_actual"):  # 13, not 13.0, beside torch's empty
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    # a stable order whatever order the (interleaved) schedule finished the cells in
    order = ["model", "backend", "precision", "mode", "dims", "opset_requested", "exporter_used",
             "batch_size"]  # fmt: skip
    return frame.sort_values(order, na_position="last", kind="stable").reset_index(drop=True)
