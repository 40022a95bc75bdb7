"""HTML building blocks: an escaped table and a self-contained page (plotly.js embedded once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.offline

from bench.report.format import esc

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} tr.fail td{background:#fde2e1} tr.warn td{background:#fff4ce}
p.warn{background:#fff4ce;padding:6px 10px;border-left:4px solid #e0a800}
p.fail{background:#fde2e1;padding:6px 10px;border-left:4px solid #d62728}
.notes{font-size:12px;color:#555;margin:-16px 0 24px} pre{background:#f6f6f6;padding:8px;
white-space:pre-wrap;word-break:break-all} .chart{margin:12px 0 28px}
"""


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fail_column: int | None = None,
    row_classes: Sequence[str] | None = None,
) -> str:
    """An escaped HTML table; rows whose `fail_column` mentions FAIL are highlighted, or
    each row gets its class from `row_classes` (`fail`, `warn`)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        failed = fail_column is not None and "FAIL" in str(row[fail_column])
        name = row_classes[i] if row_classes is not None else ("fail" if failed else "")
        cells = "".join(f"<td>{esc(c)}</td>" for c in row)
        row_class = f' class="{esc(name)}"' if name else ""
        body.append(f"<tr{row_class}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_list(items: Sequence[Any]) -> str:
    """An escaped bullet list."""
    return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def html_notes(notes: Sequence[str]) -> str:
    """Footnotes under a table."""
    return "".join(f"<p class='notes'>{esc(n)}</p>" for n in notes)


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
