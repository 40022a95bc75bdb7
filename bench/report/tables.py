"""Rows of the report tables (latency, accuracy, problems, headline) and the terminal table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from bench.report.format import batch_label, export_label, fmt
from bench.report.frame import summary_frame


def _status_badge(row: pd.Series, emoji: bool) -> str:
    if row["status"] == "ok":
        return "✅ pass" if emoji else "pass"
    if row["status"] == "parity_failed":
        return "❌ PARITY FAIL" if emoji else "PARITY FAIL"
    return row["status"]


def latency_rows(frame: pd.DataFrame, emoji: bool = True) -> tuple[list[str], list[list[Any]]]:
    """The latency table; `emoji` badges for Markdown, plain words for HTML."""
    headers = [
        "model",
        "backend",
        "export",
        "batch",
        "precision",
        "status",
        "median µs",
        "95% CI µs",
        "p90 µs",
        "p99 µs",
        "e2e median µs",
        "items/s",
        "vs torch",
    ]
    rows = []
    for _, r in frame.iterrows():
        ci = (
            f"{fmt(r['ci95_low_us'])}–{fmt(r['ci95_high_us'])}"
            if r["ci95_low_us"] is not None and not pd.isna(r["ci95_low_us"])
            else "–"
        )
        speed = r.get("speedup_vs_torch")
        rows.append(
            [
                r["model"],
                r["backend"],
                export_label(r),
                batch_label(r),
                r["precision"],
                _status_badge(r, emoji),
                fmt(r["center_us"]),
                ci,
                fmt(r["p90_us"]),
                fmt(r["p99_us"]),
                fmt(r["e2e_center_us"]),
                fmt(r["throughput_items_per_s"], ".0f"),
                f"{speed:.2f}×" if speed is not None and not pd.isna(speed) else "–",
            ]
        )
    return headers, rows


def accuracy_rows(frame: pd.DataFrame, emoji: bool = True) -> tuple[list[str], list[list[Any]]]:
    """The accuracy table of every cell that produced outputs."""
    headers = [
        "model",
        "backend",
        "export",
        "batch",
        "precision",
        "parity",
        "max abs err",
        "max rel err",
        "cosine",
        "beyond tol",
        "argmax agree",
        "rtol / atol",
    ]
    rows = []
    for _, r in frame.iterrows():
        if r["parity_passed"] is None or pd.isna(r["parity_passed"]):
            continue
        rows.append(
            [
                r["model"],
                r["backend"],
                export_label(r),
                batch_label(r),
                r["precision"],
                ("✅ pass" if emoji else "pass")
                if r["parity_passed"]
                else ("❌ FAIL" if emoji else "FAIL"),
                fmt(r["max_abs_err"], ".2e"),
                fmt(r["max_rel_err"], ".2e"),
                fmt(r["cosine"], ".7f"),
                fmt(r["frac_beyond_tol"], ".2%"),
                fmt(r["argmax_agreement"], ".0%"),
                f"{fmt(r['rtol'], 'g')} / {fmt(r['atol'], 'g')}",
            ]
        )
    return headers, rows


def problem_rows(frame: pd.DataFrame) -> list[list[Any]]:
    bad = frame[~frame["status"].isin(["ok"])]
    return [
        [
            r["model"],
            r["backend"],
            export_label(r),
            batch_label(r),
            r["precision"],
            r["status"],
            r["reason"],
        ]
        for _, r in bad.iterrows()
    ]


def headline_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model, batch size and precision: the fastest backend that passed parity.

    Also names a faster backend that failed parity, so a wrong result never hides.
    """
    rows = []
    timed = frame[frame["throughput_items_per_s"].notna()]
    keys = ["model", "batch_size", "dims", "precision"]
    for (model, batch, dims, precision), group in timed.groupby(keys):
        passing = group[group["status"] == "ok"].sort_values("throughput_items_per_s")
        if passing.empty:
            continue
        best = passing.iloc[-1]
        faster_wrong = group[
            (group["status"] == "parity_failed")
            & (group["throughput_items_per_s"] > best["throughput_items_per_s"])
        ]
        rows.append(
            {
                "model": model,
                "batch_size": int(batch),
                "dims": dims,
                "precision": precision,
                "backend": best["backend"],
                "export": export_label(best),
                "center_us": best["center_us"],
                "items_per_s": best["throughput_items_per_s"],
                "speedup_vs_torch": best["speedup_vs_torch"],
                "faster_but_wrong": ", ".join(sorted(set(faster_wrong["backend"]))),
            }
        )
    return rows


def terminal_table(records: Sequence[dict[str, Any]]) -> str:
    """A compact fixed-width table for the end of a run."""
    frame = summary_frame(records)
    if frame.empty:
        return "no cells"
    headers = [
        "backend",
        "export",
        "batch",
        "prec",
        "status",
        "median µs",
        "items/s",
        "max abs err",
        "vs torch",
    ]
    rows = []
    for _, r in frame.iterrows():
        speed = r.get("speedup_vs_torch")
        status = {"ok": "ok", "parity_failed": "PARITY FAIL"}.get(r["status"], r["status"])
        rows.append(
            [
                r["backend"],
                export_label(r),
                batch_label(r),
                r["precision"],
                status,
                fmt(r["center_us"]),
                fmt(r["throughput_items_per_s"], ".0f"),
                fmt(r["max_abs_err"], ".1e"),
                f"{speed:.2f}x" if speed is not None and not pd.isna(speed) else "-",
            ]
        )
    models = frame["model"].unique()
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = []
    for model in models:
        lines.append(f"model: {model}")
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for (_, r), row in zip(frame.iterrows(), rows, strict=True):
            if r["model"] == model:
                lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)
