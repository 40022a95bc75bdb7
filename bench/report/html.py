"""report.html: one self-contained, offline file (plotly.js embedded once, not from a CDN)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.offline

from bench.report.charts import run_charts
from bench.report.tables import (
    accuracy_rows,
    headline_rows,
    latency_rows,
    problem_rows,
    summary_frame,
)

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} tr.fail td{background:#fde2e1} pre{background:#f6f6f6;padding:8px;
white-space:pre-wrap;word-break:break-all} .chart{margin:12px 0 28px}
"""


def esc(value: Any) -> str:
    """Every string from models, backends, errors or the environment goes through this."""
    return html.escape("–" if value is None else str(value), quote=True)


def html_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], fail_column: int | None = None
) -> str:
    """An escaped HTML table; rows whose `fail_column` mentions FAIL are highlighted."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        failed = fail_column is not None and "FAIL" in str(row[fail_column])
        cells = "".join(f"<td>{esc(c)}</td>" for c in row)
        row_class = ' class="fail"' if failed else ""
        body.append(f"<tr{row_class}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, sections: Sequence[str], figures: Sequence[go.Figure]) -> str:
    """A full HTML page: plotly.js once, then the sections and one div per figure."""
    charts = [
        '<div class="chart">'
        + fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{i}",
            config={"displaylogo": False},
        )
        + "</div>"
        for i, fig in enumerate(figures)
    ]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{STYLE}</style>"
        f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>"
        + "".join(sections)
        + "<h2>Charts</h2>"
        + "".join(charts)
        + "</body></html>"
    )


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
                        f"{h['p50_us']:.1f}" if h["p50_us"] == h["p50_us"] and h["p50_us"] else "–",
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
