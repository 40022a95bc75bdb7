"""Formatting shared by every report: labels, numbers, escaping, the Markdown table.

A leaf: it imports nothing from bench.report (and neither pandas nor plotly), so tables,
charts, HTML pages and the compare report use it without importing one another.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any


def missing(value: Any) -> bool:
    """None, NaN, or pandas' NA: a value a table shows as a dash."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def fmt(value: Any, spec: str = ".1f") -> str:
    """A number in `spec`, a dash when missing, anything else as text."""
    if missing(value):
        return "–"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def export_label(row: Mapping[str, Any]) -> str:
    """`exporter opN` (with `→M` when the file holds another opset), `file opN`, or `eager`."""
    if row.get("exporter") == "file":
        actual = row.get("opset_actual")
        return "file" if missing(actual) else f"file op{int(actual)}"
    requested = row.get("opset_requested")
    if missing(requested):
        return "eager"
    used = row.get("exporter_used")
    used = used if isinstance(used, str) else row.get("exporter")
    actual = row.get("opset_actual")
    label = f"{used} op{int(requested)}"
    if not missing(actual) and int(actual) != int(requested):
        label += f"→{int(actual)}"
    return label


def batch_label(row: Mapping[str, Any]) -> str:
    """The batch size, with any other dynamic dimension's size beside it."""
    dims = row.get("dims") or ""
    return f"{row['batch_size']} {dims}".strip()


def md_escape(text: Any) -> str:
    """Text safe inside a GitHub Markdown table cell."""
    return (
        str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
    )


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub Markdown table; every cell escaped."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def esc(value: Any) -> str:
    """HTML-escaped text: every string from models, backends, errors or the environment."""
    return html.escape("–" if value is None else str(value), quote=True)


def plain(text: object) -> str:
    """A label plotly shows as literal text: its pseudo-HTML (<a>, <b>, ...) is neutralised."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
