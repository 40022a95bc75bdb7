"""summary_frame: one row per cell, the table every report is built from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from bench.config import BASELINE_BACKEND

KEY_COLUMNS = [
    "model",
    "backend",
    "exporter",
    "opset_requested",
    "opset_actual",
    "batch_size",
    "precision",
]


def _worst_parity(record: dict[str, Any]) -> dict[str, Any]:
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


def summary_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per cell: keys, status, latency statistics, parity, speedup over torch."""
    rows = []
    for record in records:
        latency = (record.get("latency") or {}).get("inference") or {}
        tput = record.get("throughput") or {}
        e2e = (record.get("latency") or {}).get("end_to_end") or {}
        settings = record.get("settings") or {}
        rows.append(
            {
                **{key: record.get(key) for key in KEY_COLUMNS},
                "dims": " ".join(f"{k}={v}" for k, v in sorted((record.get("dims") or {}).items())),
                "exporter_used": record.get("exporter_used"),
                "status": record["status"],
                "p50_us": latency.get("p50_us"),
                "mean_us": latency.get("mean_us"),
                "std_us": latency.get("std_us"),
                "min_us": latency.get("min_us"),
                "p90_us": latency.get("p90_us"),
                "p95_us": latency.get("p95_us"),
                "p99_us": latency.get("p99_us"),
                "max_us": latency.get("max_us"),
                "ci95_low_us": latency.get("ci95_low_us"),
                "ci95_high_us": latency.get("ci95_high_us"),
                "n_samples": latency.get("n"),
                "stop_reason": latency.get("stop_reason"),
                "mode": record.get("mode", "latency"),
                "requests": tput.get("requests"),
                "throughput_items_per_s": tput.get("items_per_s_wall")
                or latency.get("throughput_items_per_s"),
                "e2e_p50_us": e2e.get("p50_us"),
                "load_s": (record.get("cold_start") or {}).get("load_s"),
                "export_s": (record.get("export") or {}).get("export_s"),
                "export_cached": (record.get("export") or {}).get("cached"),
                "first_run_ms": (record.get("cold_start") or {}).get("first_run_ms"),
                "peak_rss_mb": (record.get("memory") or {}).get("peak_rss_mb"),
                "effective_precision": settings.get("precision"),
                **_worst_parity(record),
                "warnings": "; ".join(record.get("warnings") or []),
                "reason": (record.get("reason") or "").splitlines()[0]
                if record.get("reason")
                else "",
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # Speedup = items/s over the torch baseline's items/s at the same model, batch, precision
    # (in latency mode that is the ratio of medians).
    baseline = frame[(frame["backend"] == BASELINE_BACKEND) & (frame["status"] == "ok")]
    keys = ["model", "batch_size", "dims", "precision"]
    base_rate = baseline.set_index(keys)["throughput_items_per_s"].to_dict()
    frame["speedup_vs_torch"] = [
        (v / base_rate[k]) if v and base_rate.get(k) else None
        for k, v in zip(
            zip(*(frame[c] for c in keys), strict=True),
            frame["throughput_items_per_s"],
            strict=True,
        )
    ]
    return frame
