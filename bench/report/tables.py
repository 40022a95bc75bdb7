"""Rows of the cell tables (compact latency, full latency, accuracy) from summary_frame.

Skipped cells are not rows here: they collapse into one line per (backend, reason)
(bench.report.notes). Markers: LOOP_MARK on an interval from a single trial, CONTENDED on
a speedup measured while other processes held the CPU.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.report.explained import consistency_text, ratio_text, text, verdicts_text
from bench.report.format import batch_label, export_label, fmt, missing

LOOP_MARK = "¹"
CONTENDED = "⚠ contended"
MEASURED = ("ok", "parity_failed")


def status_badge(row: pd.Series, emoji: bool) -> str:
    if row["status"] == "ok":
        return "✅ pass" if emoji else "pass"
    if row["status"] == "parity_failed":
        return "❌ PARITY FAIL" if emoji else "PARITY FAIL"
    return row["status"]


def interval_text(row: pd.Series, prefix: str = "", center: bool = True) -> str:
    """`12.1 [12.0–12.2]`, with LOOP_MARK when the interval covers one loop only."""
    value = row.get(f"{prefix}center_us")
    low, high = row.get(f"{prefix}ci95_low_us"), row.get(f"{prefix}ci95_high_us")
    text = fmt(value) if center else ""
    if not missing(low) and not missing(high):
        text += f" [{fmt(low)}–{fmt(high)}]"
        text += LOOP_MARK if row.get(f"{prefix}interval_scope") == "loop" else ""
    return text.strip() or "–"


def speedup_text(value: Any, contended: bool = False, sign: str = "×") -> str:
    """`4.05×`, with CONTENDED beside it when either side ran on a busy CPU."""
    if missing(value):
        return "–"
    return f"{value:.2f}{sign}" + (f" {CONTENDED}" if contended else "")


def warning_marker(row: pd.Series) -> str:
    """The marker of a cell with stability or contention warnings."""
    if row.get("contended"):
        return "⚠ CPU contended"
    count = len([w for w in (row.get("warnings") or "").split("; ") if w])
    return f"⚠ {count} warning{'s' if count > 1 else ''}" if count else ""


def _export(row: pd.Series) -> str:
    note = row.get("same_graph")
    return export_label(row) + (f" ({note})" if note else "")


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] != "skipped"]


def compact_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[Any]]]:
    """One short row per measured cell, for release notes."""
    headers = ["model", "backend", "export", "batch", "median µs [95%]", "items/s",
               "vs torch", "parity"]  # fmt: skip
    several_precisions = frame["precision"].nunique() > 1
    rows = []
    for _, r in frame[frame["status"].isin(MEASURED)].iterrows():
        batch = batch_label(r) + (f" {r['precision']}" if several_precisions else "")
        batch += f" {r['mode']}" if r["mode"] != "latency" else ""
        rows.append([
            r["model"], r["backend"], _export(r), batch, interval_text(r),
            fmt(r["throughput_items_per_s"], ".0f"),
            speedup_text(r["speedup_vs_torch"], bool(r["speedup_contended"])),
            "✅ pass" if r["status"] == "ok" else "❌ FAIL",
        ])  # fmt: skip
    return headers, rows


def latency_rows(frame: pd.DataFrame, emoji: bool = True) -> tuple[list[str], list[list[Any]]]:
    """The full latency table; `emoji` badges for Markdown, plain words for HTML."""
    headers = ["model", "backend", "export", "batch", "precision", "status", "median µs",
               "95% interval µs", "trials", "p90 µs", "p99 µs", "e2e median µs", "items/s",
               "vs torch", "warnings", "note"]  # fmt: skip
    rows = []
    for _, r in _shown(frame).iterrows():
        rows.append([
            r["model"], r["backend"], export_label(r), batch_label(r),
            r["precision"] + (f" {r['mode']}" if r["mode"] != "latency" else ""),
            status_badge(r, emoji), fmt(r["center_us"]), interval_text(r, center=False),
            "1" if missing(r["n_trials"]) else str(int(r["n_trials"])),
            fmt(r["p90_us"]), fmt(r["p99_us"]), fmt(r["e2e_center_us"]),
            fmt(r["throughput_items_per_s"], ".0f"),
            speedup_text(r["speedup_vs_torch"], bool(r["speedup_contended"])),
            warning_marker(r), r["same_graph"] or "",
        ])  # fmt: skip
    return headers, rows


def accuracy_rows(frame: pd.DataFrame, emoji: bool = True) -> tuple[list[str], list[list[Any]]]:
    """The accuracy table of every cell that produced outputs: errors against PyTorch fp32,
    the noise floor (PyTorch fp32's own error against fp64) and the worst ratio to it, both
    verdicts (* the one that set the status), batch consistency, whose fault, where it starts."""
    headers = ["model", "backend", "export", "batch", "precision", "parity", "max abs err",
               "max rel err", "cosine", "beyond tol", "argmax agree", "rtol / atol",
               "noise floor", "err / floor", "verdicts", "alone = batched", "attribution",
               "first diverging node"]  # fmt: skip
    rows = []
    for _, r in frame.iterrows():
        if missing(r["parity_passed"]):
            continue
        verdict = ("✅ pass" if emoji else "pass") if r["parity_passed"] else (
            "❌ FAIL" if emoji else "FAIL")  # fmt: skip
        rows.append([
            r["model"], r["backend"], export_label(r), batch_label(r), r["precision"], verdict,
            fmt(r["max_abs_err"], ".2e"), fmt(r["max_rel_err"], ".2e"), fmt(r["cosine"], ".7f"),
            fmt(r["frac_beyond_tol"], ".2%"), fmt(r["argmax_agreement"], ".0%"),
            f"{fmt(r['rtol'], 'g')} / {fmt(r['atol'], 'g')}", fmt(r.get("noise_floor"), ".1e"),
            ratio_text(r.get("floor_ratio")), verdicts_text(r),
            consistency_text(r.get("batch_consistent")), text(r.get("attribution")),
            text(r.get("first_diverging_node")),
        ])  # fmt: skip
    return headers, rows


def row_classes(frame: pd.DataFrame) -> list[str]:
    """CSS classes of the full latency table's rows: `fail`, `warn` (CPU contended), ``."""
    return [
        "fail" if r["status"] not in ("ok",) else ("warn" if r["contended"] else "")
        for _, r in _shown(frame).iterrows()
    ]
