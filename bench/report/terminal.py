"""The fixed-width table printed at the end of a run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.report import fields
from bench.report.format import batch_label, export_label, fmt
from bench.report.frame import summary_frame
from bench.report.notes import skip_lines
from bench.report.tables import speedup_text

HEADERS = ["backend", "export", "batch", "prec", "status", "median µs", "items/s",
           "max abs err", "vs torch"]  # fmt: skip


def terminal_table(records: Sequence[dict[str, Any]]) -> str:
    """One table per model of the cells that ran, then one line per (backend, skip reason)."""
    frame = summary_frame(records)
    if frame.empty:
        return "no cells"
    shown = frame[frame["status"] != "skipped"]
    rows = []
    for _, r in shown.iterrows():
        status = {"ok": "ok", "parity_failed": "PARITY FAIL"}.get(r["status"], r["status"])
        speed = speedup_text(r["speedup_vs_torch"], bool(r["speedup_contended"]), sign="x")
        rows.append([r["backend"], export_label(r), batch_label(r), r["precision"], status,
                     fmt(r["center_us"]), fmt(r["throughput_items_per_s"], ".0f"),
                     fmt(r["max_abs_err"], ".1e"), speed.replace("–", "-")])  # fmt: skip
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(HEADERS)]
    lines = []
    for model in shown["model"].unique():
        lines.append(f"model: {model}")
        lines.append("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)).rstrip())
        for (_, r), row in zip(shown.iterrows(), rows, strict=True):
            if r["model"] == model:
                lines.append(
                    "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                )
    lines += skip_lines(frame)
    lines += fields.control_lines(records)
    return "\n".join(lines)
