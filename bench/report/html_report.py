"""report.html: one self-contained, offline file (plotly.js embedded once, not from a CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.report.charts import run_charts
from bench.report.format import esc, fmt
from bench.report.frame import summary_frame
from bench.report.html import html_table, page
from bench.report.tables import accuracy_rows, headline_rows, latency_rows, problem_rows


def env_section(env: dict[str, Any]) -> str:
    versions = env.get("versions") or {}
    rows = [
        ["host", env.get("host")],
        [
            "CPU",
            f"{env.get('cpu_model')} ({env.get('physical_cores')} physical / "
            f"{env.get('logical_cores')} logical cores)",
        ],
        ["memory", f"{env.get('memory_gib')} GiB"],
        ["CPU governor", env.get("cpu_governor") or "not readable"],
        ["GPU", ", ".join(env.get("gpus") or []) or "none"],
        ["platform", env.get("platform")],
        ["python", env.get("python")],
        *[[name, v] for name, v in sorted(versions.items()) if v],
        ["bench", f"{env.get('bench_version')} ({env.get('bench_commit')})"],
    ]
    command = " ".join(env.get("command") or [])
    return (
        "<h2>Environment</h2>"
        + html_table(["what", "value"], rows)
        + f"<h2>Reproduce</h2><pre>{esc(command)}</pre>"
    )


def html_report(records: Sequence[dict[str, Any]], env: dict[str, Any]) -> str:
    """report.html for one run."""
    frame = summary_frame(records)
    sections = ["<h1>bench report</h1>"]
    if frame.empty:
        return page("bench report", [*sections, "<p>No cells were run.</p>"], [])
    passed = int((frame["status"] == "ok").sum())
    ran = int(frame["status"].isin(["ok", "parity_failed"]).sum())
    sections.append(
        f"<p><b>Parity: {passed} of {ran} measured cells pass.</b> "
        f"Cells: {esc(', '.join(f'{v} {k}' for k, v in sorted(frame['status'].value_counts().items())))}</p>"
    )
    headline = headline_rows(frame)
    if headline:
        sections.append(
            "<h2>Fastest backend that passed parity</h2>"
            + html_table(
                [
                    "model",
                    "batch",
                    "precision",
                    "fastest passing",
                    "median µs",
                    "items/s",
                    "vs torch",
                    "faster but failed parity",
                ],
                [
                    [
                        h["model"],
                        f"{h['batch_size']} {h['dims']}".strip(),
                        h["precision"],
                        f"{h['backend']} ({h['export']})",
                        fmt(h["center_us"]),
                        f"{h['items_per_s']:.0f}",
                        f"{h['speedup_vs_torch']:.2f}×" if h["speedup_vs_torch"] else "–",
                        h["faster_but_wrong"] or "–",
                    ]
                    for h in headline
                ],
            )
        )
    headers, rows = latency_rows(frame, emoji=False)
    sections.append("<h2>Latency</h2>" + html_table(headers, rows, fail_column=5))
    headers, rows = accuracy_rows(frame, emoji=False)
    references = "; ".join(sorted({r.get("reference") or "torch eager fp32" for r in records}))
    sections.append(
        f"<h2>Accuracy against the reference ({esc(references)})</h2>"
        + html_table(headers, rows, 5)
    )
    problems = problem_rows(frame)
    if problems:
        sections.append(
            "<h2>Failures and skips</h2>"
            + html_table(
                ["model", "backend", "export", "batch", "precision", "status", "reason"], problems
            )
        )
    sections.append(env_section(env))
    return page("bench report", sections, run_charts(frame, records))
