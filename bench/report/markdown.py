"""report.md: GitHub Markdown for release notes.

Short on purpose: the parity status, the headline (rankings that admit ties), one compact
latency table, failures and skips one line each. The full tables, warnings and the
environment follow in a collapsed `<details>` section.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

import pandas as pd

from bench.report import fields
from bench.report.bugreport import bug_reports
from bench.report.format import md_fence, md_table, md_text
from bench.report.frame import summary_frame
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
from bench.report.profile_report import markdown_profiles
from bench.report.ranking import rank
from bench.report.tables import accuracy_rows, compact_rows, latency_rows

DETAILS_SUMMARY = "Full latency and accuracy tables, warnings, environment, reproduction"


def _notes(lines: Sequence[str]) -> list[str]:
    return ["", *(f"<sub>{md_text(n)}</sub><br>" for n in lines)] if lines else []


def _short_part(
    records: Sequence[dict[str, Any]], frame: pd.DataFrame, env: dict[str, Any]
) -> list[str]:
    ok, status = status_line(frame)
    parts = [f"**{'✅' if ok else '❌'} {md_text(status)}**"]
    resolution = resolution_line(records)
    if resolution:
        parts += ["", md_text(resolution)]
    rankings = rank(records)
    if rankings:
        parts += ["", "## Headline: fastest backend that passed parity", ""]
        parts.append(md_table(*headline_rows(rankings)))
        parts += _notes(headline_notes(rankings))
    headers, rows = compact_rows(frame)
    if rows:
        parts += ["", "## Latency", ""]
        parts.append(md_table(headers, rows))
        parts += _notes(table_notes(frame))
    problems = failure_lines(frame) + skip_lines(frame)
    if problems:
        parts += ["", "## Failures and skips", ""]
        parts += [f"- {md_text(line)}" for line in problems]
    parts += markdown_profiles(records)
    parts += bug_reports(records, env)
    return parts


def _details(
    records: Sequence[dict[str, Any]], frame: pd.DataFrame, env: dict[str, Any]
) -> list[str]:
    parts = ["", "<details>", f"<summary>{DETAILS_SUMMARY}</summary>", ""]
    headers, rows = latency_rows(frame)
    if rows:
        parts += ["## Latency, all statistics (inference only, inputs bound once; "
                  "e2e = host arrays in and out)", ""]  # fmt: skip
        parts.append(md_table(headers, rows))
    references = sorted({r.get("reference") or "torch eager fp32"
                         for r in fields.cell_records(records)})  # fmt: skip
    parts += ["", f"## Accuracy against the reference ({md_text('; '.join(references))})", ""]
    parts.append(md_table(*accuracy_rows(frame)))
    warned = warning_rows(frame)
    if warned:
        parts += ["", "## Stability warnings", ""]
        parts.append(md_table(["cell", "warnings"], warned))
    control = [md_text(line) for line in fields.control_lines(records)]
    parts += ["", "## Environment", "", *control, *([""] if control else [])]
    parts.append(md_table(["what", "value"], env_rows(env)))
    # shell-quoted, so that it runs as it ran; fenced longer than any backtick run inside
    command = shlex.join(str(arg) for arg in env.get("command") or [])
    parts += ["", "## Reproduce", "", *md_fence(command, "bash"), "", "</details>", ""]
    return parts


def markdown_report(
    records: Sequence[dict[str, Any]], env: dict[str, Any], caveats: Sequence[str] = ()
) -> str:
    """report.md for one run; `caveats` (unreadable records, a damaged env.json) lead it."""
    frame = summary_frame(records)
    parts = ["# bench report", ""]
    if caveats:
        parts += [*(f"> ⚠ {md_text(line)}" for line in caveats), ""]
    if frame.empty:
        return "\n".join([*parts, "No cell has a record."]) + "\n"
    parts += _short_part(records, frame, env)
    parts += _details(records, frame, env)
    return "\n".join(parts)
