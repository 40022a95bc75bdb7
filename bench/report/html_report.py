"""report.html: one self-contained, offline file (plotly.js embedded once, not from a CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from bench.report import fields
from bench.report.bugreport import html_bug_reports
from bench.report.charts import run_charts
from bench.report.format import esc
from bench.report.frame import summary_frame
from bench.report.html import html_list, html_notes, html_table, page
from bench.report.notes import (
    env_rows,
    failure_lines,
    headline_notes,
    headline_rows,
    resolution_line,
    skip_lines,
    status_line,
    table_notes,
    warning_rows,
)
from bench.report.profile_report import html_profiles, profile_chart
from bench.report.ranking import rank
from bench.report.tables import accuracy_rows, latency_rows, row_classes


def env_section(env: dict[str, Any], records: Sequence[dict[str, Any]] = ()) -> str:
    """The machine, versions, the control workload's line, and the reproduction command."""
    command = " ".join(env.get("command") or [])
    control = "".join(f"<p>{esc(line)}</p>" for line in fields.control_lines(records))
    return (
        "<h2>Environment</h2>"
        + control
        + html_table(["what", "value"], env_rows(env, full=True))
        + f"<h2>Reproduce</h2><pre>{esc(command)}</pre>"
    )


def warnings_section(frame: pd.DataFrame) -> str:
    """Stability and CPU-contention warnings, visible near the top; contended cells first."""
    rows = warning_rows(frame)
    if not rows:
        return ""
    contended = int(frame["contended"].sum())
    lead = (f"<p class='warn'><b>⚠ {contended} cell(s) ran while other processes held the "
            "CPU</b>: their numbers, and speedups against them, may not hold on a quiet "
            "machine.</p>") if contended else ""  # fmt: skip
    return (
        f"<h2 id='warnings'>Warnings ({len(rows)} cells)</h2>"
        + lead
        + html_list([f"{cell}: {text}" for cell, text in rows])
    )


def html_report(
    records: Sequence[dict[str, Any]], env: dict[str, Any], caveats: Sequence[str] = ()
) -> str:
    """report.html for one run; `caveats` (unreadable records, a damaged env.json) lead it."""
    sections = ["<h1>bench report</h1>"]
    sections += [f"<p class='warn'><b>⚠ {esc(line)}</b></p>" for line in caveats]
    body, figures = html_parts(records, env)
    return page("bench report", [*sections, *body], figures)


def html_parts(
    records: Sequence[dict[str, Any]], env: dict[str, Any]
) -> tuple[list[str], list[go.Figure]]:
    """The sections and charts of one run's (or one machine's) records."""
    frame = summary_frame(records)
    sections: list[str] = []
    if frame.empty:
        return ["<p>No cell has a record.</p>"], []
    ok, status = status_line(frame)
    sections.append(f"<p class='{'' if ok else 'fail'}'><b>{esc(status)}</b></p>")
    resolution = resolution_line(records)
    if resolution:
        sections.append(f"<p>{esc(resolution)}</p>")
    rankings = rank(records)
    if rankings:
        sections.append(
            "<h2>Headline: fastest backend that passed parity</h2>"
            + html_table(*headline_rows(rankings))
            + html_notes(headline_notes(rankings))
        )
    sections.append(warnings_section(frame))
    headers, rows = latency_rows(frame, emoji=False)
    if rows:
        sections.append(
            "<h2>Latency</h2>"
            + html_table(headers, rows, row_classes=row_classes(frame))
            + html_notes(table_notes(frame))
        )
    headers, rows = accuracy_rows(frame, emoji=False)
    references = sorted({r.get("reference") or "torch eager fp32"
                         for r in fields.cell_records(records)})  # fmt: skip
    sections.append(
        f"<h2>Accuracy against the reference ({esc('; '.join(references))})</h2>"
        + html_table(headers, rows, 5)
    )
    problems = failure_lines(frame) + skip_lines(frame)
    if problems:
        sections.append("<h2>Failures and skips</h2>" + html_list(problems))
    sections.append(html_profiles(records))
    sections.append(html_bug_reports(records, env))
    sections.append(env_section(env, records))
    chart = profile_chart(records)
    return sections, [*run_charts(frame, records), *([chart] if chart else [])]
