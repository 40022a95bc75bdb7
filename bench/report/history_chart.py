"""`bench history show`'s page: one metric of one model and backend across runs, a line per
cell key, with parity failures, parity changes and resolved latency steps marked.

Takes the points of bench.history.series (duck-typed: this package never imports the
history)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from bench.report.format import esc
from bench.report.html import html_table, page

MARKS = {
    "slower": ("triangle-up", "#d62728", "latency step: slower"),
    "faster": ("triangle-down", "#2ca02c", "latency step: faster"),
    "parity": ("x", "#d62728", "parity changed"),
}


def history_figure(points: Sequence[Any], metric: str, title: str) -> go.Figure:
    """Lines across runs (x: run in the order added), markers for what changed."""
    fig = go.Figure()
    order = sorted({(p.seq, p.run_id) for p in points})
    labels = {seq: f"{seq}: {run_id}" for seq, run_id in order}
    for series in dict.fromkeys(p.series for p in points):
        mine = [p for p in points if p.series == series]
        fig.add_trace(go.Scatter(
            x=[labels[p.seq] for p in mine], y=[p.value for p in mine], mode="lines+markers",
            name=series, text=[f"{p.status}; parity {p.parity_passed}" for p in mine],
            marker={"symbol": ["circle" if p.parity_passed is not False else "circle-x-open"
                               for p in mine], "size": 9},
        ))  # fmt: skip
    for name, (symbol, color, legend) in MARKS.items():
        marked = [p for p in points if p.value is not None
                  and ((p.parity_change is not None) if name == "parity" else p.step == name)]  # fmt: skip
        if marked:
            fig.add_trace(go.Scatter(
                x=[labels[p.seq] for p in marked], y=[p.value for p in marked], mode="markers",
                name=legend, text=[f"{p.series}: {p.step or ''} {p.parity_change or ''}"
                                   for p in marked],
                marker={"symbol": symbol, "color": color, "size": 16, "line": {"width": 2}},
            ))  # fmt: skip
    fig.update_layout(title=title, xaxis={"title": "run (in the order added)", "type": "category"},
                      yaxis={"title": metric}, hovermode="closest")  # fmt: skip
    return fig


def history_page(title: str, metric_text: str, headers: Sequence[str],
                 rows: Sequence[Sequence[str]], points: Sequence[Any], metric: str) -> str:  # fmt: skip
    """The whole offline page: the table, then the chart (plotly.js embedded)."""
    classes = ["fail" if "FAIL" in " ".join(r) else "warn" if r[-1].endswith("<<") else ""
               for r in rows]  # fmt: skip
    sections = [
        f"<h1>{esc(title)}</h1><p>{esc(metric)}: {esc(metric_text)}. Steps are bench "
        "compare's trial-level verdicts on latency between a cell's consecutive runs.</p>",
        html_table(headers, rows, row_classes=classes),
    ]
    return page(title, sections, [history_figure(points, metric, title)])
