"""`--profile` in the reports: where each cell's time goes, by op type, node and finding.

report.md: the top op types per backend for each model and batch size, the same time by op
family side by side across backends, and the findings. report.html: a stacked bar per cell
of time by op type (and the time outside any node), a top-nodes table per cell, findings.
Everything comes from the records' `profile` blocks (bench.validate_profile checked them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from bench.report.fields import cell_records
from bench.report.format import batch_label, cell_label, esc, export_label, md_table, md_text, plain
from bench.report.html import html_list, html_table

#: Op types named in the short tables; the rest are summed as "other".
TOP_OP_TYPES = 4
#: Op types drawn in the stacked bars before the rest are summed.
CHART_OP_TYPES = 6
#: The two stacks that are not op types, in greys.
FIXED_COLORS = {"other op types": "#c7c7c7", "outside any node": "#7f7f7f"}
NODE_HEADERS = ["node", "op type", "kernel", "precision", "device", "µs / inference", "share"]


def profiled(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cell records that carry a profile block, in model, batch, backend order."""
    found = [dict(r) for r in cell_records(records) if isinstance(r.get("profile"), dict)]
    return sorted(found, key=lambda r: (str(r.get("model")), r.get("batch_size") or 0,
                                        str(r.get("backend")), cell_label(r)))  # fmt: skip


def _num(value: Any, spec: str = ".1f") -> str:
    return "–" if value is None else format(value, spec)


def top_op_types(profile: dict[str, Any], count: int = TOP_OP_TYPES) -> str:
    """`Conv 62% · Gemm 20% · MaxPool 8% · other 10%`."""
    ops = profile.get("op_types") or []
    shown = [f"{o['op_type']} {o.get('share') or 0:.0%}" for o in ops[:count]]
    rest = sum(o.get("share") or 0 for o in ops[count:])
    return " · ".join(shown + ([f"other {rest:.0%}"] if rest > 0.005 else [])) or "–"


def coverage_text(profile: dict[str, Any]) -> str:
    """The node sum against the un-profiled median: `48.1 of 59.6 µs (81%)`."""
    if profile.get("error") and not profile.get("op_types"):
        return f"not profiled: {profile['error']}"
    node_sum, median = profile.get("node_sum_us"), profile.get("unprofiled_us")
    if median:
        return f"{_num(node_sum)} of {_num(median)} µs ({(node_sum or 0) / median:.0%})"
    return f"{_num(node_sum)} µs"


def summary_rows(records: Sequence[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in profiled(records):
        p = r["profile"]
        kinds = sorted({f["kind"] for f in p.get("findings") or []})
        rows.append([str(r.get("model")), str(r.get("batch_size")), str(r.get("backend")),
                     cell_label(r, model=False, batch=False), top_op_types(p),
                     coverage_text(p), ", ".join(kinds) or "–"])  # fmt: skip
    return rows


def _column(record: dict[str, Any]) -> str:
    """A backend column of the family table: backend, export, precision (sizes are rows)."""
    mode = record.get("mode") or "latency"
    return " · ".join([str(record.get("backend")), export_label(record),
                       str(record.get("precision")) + (f" {mode}" if mode != "latency" else "")])  # fmt: skip


def family_rows(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Time per inference by op family, each backend a column, per model and batch size:
    two backends of one run compared where their operators have different names."""
    cells = profiled(records)
    labels = sorted({_column(r) for r in cells})
    table: dict[tuple[str, str, str], dict[str, float]] = {}
    for r in cells:
        for o in r["profile"].get("op_types") or []:
            key = (str(r.get("model")), batch_label(r), o.get("family") or "other")
            by_cell = table.setdefault(key, {})
            by_cell[_column(r)] = by_cell.get(_column(r), 0.0) + float(o.get("time_us") or 0)
    rows = [[m, b, f, *(_num(v.get(label)) for label in labels)]
            for (m, b, f), v in sorted(table.items())]  # fmt: skip
    return ["model", "batch", "op family", *(f"{label} µs" for label in labels)], rows


def node_rows(profile: dict[str, Any]) -> list[list[str]]:
    return [[n.get("name"), n.get("op_type"), n.get("kernel") or "–", n.get("precision") or "–",
             n.get("device") or "–", _num(n.get("time_us")), f"{n.get('share') or 0:.1%}"]
            for n in profile.get("top_nodes") or []]  # fmt: skip


def finding_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    return [f"{cell_label(r)}: {f['message']}" for r in profiled(records)
            for f in r["profile"].get("findings") or []]  # fmt: skip


def markdown_profiles(records: Sequence[dict[str, Any]]) -> list[str]:
    """report.md's profile section ([] when no cell was profiled)."""
    rows = summary_rows(records)
    if not rows:
        return []
    parts = ["", "## Where the time goes (--profile)", "",
             md_text("Per-node times from each runtime's own profiler, averaged over the "
                     "profiled pass that ran after the timed trials; node time is compared "
                     "with the un-profiled median."), ""]  # fmt: skip
    headers = ["model", "batch", "backend", "cell", "top op types (share of node time)",
               "node time of median", "findings"]  # fmt: skip
    parts.append(md_table(headers, rows))
    headers, family = family_rows(records)
    if len({r.get("backend") for r in profiled(records)}) > 1 and family:
        parts += ["", "### By op family, backends side by side (µs per inference)", ""]
        parts.append(md_table(headers, family))
    lines = finding_lines(records)
    if lines:
        parts += ["", "### Profile findings", ""]
        parts += [f"- {md_text(line)}" for line in lines]
    return parts


def profile_chart(records: Sequence[dict[str, Any]]) -> go.Figure | None:
    """A stacked bar per profiled cell: its time by op type (and the time outside any node:
    un-profiled median minus node time, when positive), as shares of the cell's total so
    that cells of very different speeds read alike; the hover gives µs per inference."""
    cells = [r for r in profiled(records) if r["profile"].get("op_types")]
    if not cells:
        return None
    labels = [plain(cell_label(r)) for r in cells]
    stacks: dict[str, list[float]] = {}
    for index, r in enumerate(cells):
        ops = r["profile"]["op_types"]
        parts = [(str(o["op_type"]), float(o.get("time_us") or 0)) for o in ops[:CHART_OP_TYPES]]
        parts.append(("other op types", sum(float(o.get("time_us") or 0)
                                            for o in ops[CHART_OP_TYPES:])))  # fmt: skip
        parts.append(("outside any node", max(float(r["profile"].get("overhead_us") or 0), 0)))
        for name, value in parts:
            stacks.setdefault(name, [0.0] * len(cells))[index] += value
    totals = [sum(values[i] for values in stacks.values()) or 1.0 for i in range(len(cells))]
    fig = go.Figure()
    for name, values in stacks.items():
        if any(values):
            fig.add_trace(go.Bar(
                x=labels, y=[100 * v / t for v, t in zip(values, totals, strict=True)],
                customdata=values, name=plain(name), marker_color=FIXED_COLORS.get(name),
                hovertemplate="%{x}<br>" + plain(name) + ": %{customdata:.1f} µs "
                "(%{y:.0f}%)<extra></extra>",
            ))  # fmt: skip
    fig.update_layout(barmode="stack", height=620, yaxis_title="% of the cell's time",
                      title="Where the time goes: time by op type per cell (hover: µs per "
                      "inference)")  # fmt: skip
    return fig


def html_profiles(records: Sequence[dict[str, Any]]) -> str:
    """report.html's profile section: summary, side by side families, top nodes, findings."""
    rows = summary_rows(records)
    if not rows:
        return ""
    headers = ["model", "batch", "backend", "cell", "top op types", "node time of median",
               "findings"]  # fmt: skip
    parts = ["<h2>Where the time goes (--profile)</h2>", html_table(headers, rows)]
    headers, family = family_rows(records)
    if len({r.get("backend") for r in profiled(records)}) > 1 and family:
        parts += ["<h3>By op family, backends side by side (µs per inference)</h3>",
                  html_table(headers, family)]  # fmt: skip
    lines = finding_lines(records)
    if lines:
        parts += ["<h3>Profile findings</h3>", html_list(lines)]
    for r in profiled(records):
        p = r["profile"]
        if p.get("top_nodes"):
            files = " · ".join(esc(f) for f in (p.get("file"), p.get("trace_file")) if f)
            parts += [f"<h3>Top nodes: {esc(cell_label(r))}</h3>",
                      f"<p class='notes'>{esc(p.get('tool'))}, {esc(p.get('runs'))} runs; "
                      f"{files}</p>", html_table(NODE_HEADERS, node_rows(p))]  # fmt: skip
    return "".join(parts)
