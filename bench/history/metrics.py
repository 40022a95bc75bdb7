"""The flat columns a history row keeps of a record, read as the reports read them
(bench.report.fields), and the metrics `bench history show` charts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Metrics `bench history show --metric` charts (all stored as columns of `cells`).
METRICS = {
    "center_us": "latency estimate, µs (the trials' center; lower is better)",
    "p50_us": "median latency of the samples, µs",
    "p90_us": "90th percentile latency, µs",
    "p99_us": "99th percentile latency, µs",
    "e2e_center_us": "end-to-end latency (host arrays in and out), µs",
    "items_per_s": "throughput, items/s (higher is better)",
    "peak_rss_mb": "peak resident memory of the worker, MB",
    "load_s": "seconds to load the model into the runtime",
    "max_abs_err": "worst max abs error against the PyTorch reference",
}
KEY_COLUMNS = ("model", "backend", "exporter", "opset_requested", "opset_actual",
               "batch_size", "dims", "precision", "mode", "kind", "status")  # fmt: skip


def _number(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def _worst_error(record: Mapping[str, Any]) -> float | None:
    outputs = (record.get("parity") or {}).get("outputs") or []
    errors = [o["max_abs_err"] for o in outputs if _number(o.get("max_abs_err")) is not None]
    return float(max(errors)) if errors else None


def row_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """Keys, status, parity verdict and every metric of METRICS for one upgraded record."""
    # imported here: the parser imports METRICS, and the report package brings pandas
    from bench.report import fields
    from bench.report.format import dims_text

    block = fields.timed_block(record) or {}
    e2e = fields.timed_block(record, "end_to_end")
    passed = (record.get("parity") or {}).get("passed")
    return {
        "model": record.get("model"),
        "backend": record.get("backend"),
        "exporter": record.get("exporter_used") or record.get("exporter"),
        "opset_requested": record.get("opset_requested"),
        "opset_actual": record.get("opset_actual"),
        "batch_size": record.get("batch_size"),
        "dims": dims_text(record.get("dims")),
        "precision": record.get("precision"),
        "mode": record.get("mode", "latency"),
        "kind": record.get("kind", "cell"),
        "status": record.get("status"),
        "parity_passed": None if passed is None else int(bool(passed)),
        "center_us": fields.center_us(block),
        "p50_us": _number(block.get("p50_us")),
        "p90_us": _number(block.get("p90_us")),
        "p99_us": _number(block.get("p99_us")),
        "e2e_center_us": fields.center_us(e2e),
        "items_per_s": fields.items_per_s(record),
        "peak_rss_mb": _number((record.get("memory") or {}).get("peak_rss_mb")),
        "load_s": _number((record.get("cold_start") or {}).get("load_s")),
        "max_abs_err": _worst_error(record),
    }
