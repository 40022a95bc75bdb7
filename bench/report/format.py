"""Formatting shared by every report: labels, numbers, escaping, the Markdown table.

A leaf: it imports nothing from bench.report (and neither pandas nor plotly), so tables,
charts, HTML pages and the compare report use it without importing one another.
"""

from __future__ import annotations

import html
import math
import re
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
    """A number in `spec`, a dash when missing, anything else as text. A latency beyond
    ten million (a contended run's wild interval) is written in three significant digits."""
    if missing(value):
        return "–"
    if isinstance(value, float):
        return format(value, ".3g" if spec == ".1f" and abs(value) >= 1e7 else spec)
    return str(value)


def _first(*values: Any) -> Any:
    return next((v for v in values if not missing(v)), None)


def export_label(row: Mapping[str, Any]) -> str:
    """How the cell's model file was made: `dynamo op18`, `file op17`, or `eager`.

    Names the exporter actually used and the opset actually written when the record has them
    (`exporter_used`, `opset_actual`), else the requested ones; `(asked opN)` when the written
    opset is not the requested one. `row` is a record, a summary_frame row or a join key's dict.
    """
    raw_export = row.get("export")
    export: Mapping[str, Any] = raw_export if isinstance(raw_export, Mapping) else {}
    exporter = _first(row.get("exporter"), export.get("exporter_requested"))
    requested = _first(row.get("opset_requested"), export.get("opset_requested"))
    actual = _first(row.get("opset_actual"), export.get("opset_actual"))
    if exporter == "file":
        return "file" if actual is None else f"file op{int(actual)}"
    if requested is None and actual is None:
        return "eager" if exporter is None else str(exporter)
    used = _first(row.get("exporter_used"), export.get("exporter_used"), exporter)
    label = f"{used} op{int(_first(actual, requested))}"
    if actual is not None and requested is not None and int(actual) != int(requested):
        label += f" (asked op{int(requested)})"
    return label


def dims_text(dims: Any) -> str:
    """`seq=128 ...` from a record's dims dict, a join key's pairs, or text already made."""
    if missing(dims) or not dims:
        return ""
    if isinstance(dims, str):
        return dims
    pairs = dims.items() if isinstance(dims, Mapping) else dims
    return " ".join(f"{name}={size}" for name, size in sorted(pairs))


def batch_label(row: Mapping[str, Any]) -> str:
    """The batch size, with any other dynamic dimension's size beside it."""
    return f"{row['batch_size']} {dims_text(row.get('dims'))}".strip()


def cell_label(row: Mapping[str, Any], *, model: bool = True, batch: bool = True) -> str:
    """The one name of a cell: `model · backend · export · bN dims · precision [mode]`.

    Used by every table, chart and comparison; `model` and `batch` leave those parts out
    where a chart already shows them (a legend of one model, a batch-size axis).
    """
    parts = [str(row.get("model"))] if model else []
    parts += [str(row.get("backend")), export_label(row)]
    sizes = dims_text(row.get("dims"))
    if batch:
        parts.append(f"b{row.get('batch_size')}" + (f" {sizes}" if sizes else ""))
    elif sizes:
        parts.append(sizes)
    mode = row.get("mode") or "latency"
    parts.append(str(row.get("precision")) + (f" {mode}" if mode != "latency" else ""))
    return " · ".join(parts)


#: ANSI colour codes (exporters print them) and every other control character.
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")
#: Characters that start Markdown or HTML inline syntax wherever they stand.
_ALWAYS = re.compile(r"([\\`*~])")
#: `_` that could open or close emphasis (not between two letters or digits, as in simple_cnn).
_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
#: `]` that would close a link or image: `](url)`, `][ref]`, `]: definition`.
_LINK = re.compile(r"\](?=[(\[:])")
#: The number of an ordered list item at the start of a line (`1.`, `2)`).
_ORDERED = re.compile(r"\d{1,9}(?=[.)](?:\s|$))")


def _inline(value: Any) -> str:
    """One line of literal text: control characters out, line breaks and tabs as spaces,
    every character that starts inline Markdown or HTML escaped."""
    text = _CONTROL.sub("", str(value).replace("\r\n", " ").replace("\n", " "))
    text = text.replace("\r", " ").replace("\t", " ")
    text = _ALWAYS.sub(r"\\\1", text)
    text = _UNDERSCORE.sub(r"\\_", text)
    text = _LINK.sub(r"\\]", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _block_safe(text: str) -> str:
    """`text` stripped, with a start that would make its line a heading, quote, list item or
    setext underline escaped (`# x` -> `\\# x`, `1. x` -> `1\\. x`)."""
    text = text.strip()
    ordered = _ORDERED.match(text)
    if ordered:
        return text[: ordered.end()] + "\\" + text[ordered.end() :]
    return "\\" + text if text and text[0] in "#>+-=" else text


def md_cell(value: Any) -> str:
    """Any value written into a GitHub Markdown table cell, shown literally: one line, `|`
    escaped, no Markdown or HTML syntax of its own (links, emphasis, code, tags, headings)."""
    return _block_safe(_inline(value).replace("|", "\\|"))


def md_text(value: Any) -> str:
    """Free text written as (or into) one line of Markdown, shown literally: one line, no
    inline Markdown or HTML, and no start that would make it a heading, quote or list item."""
    return _block_safe(_inline(value))


def _longest_backticks(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def md_fence(text: str, info: str = "") -> list[str]:
    """`text` as a fenced code block: the fence is a backtick run longer than any inside."""
    fence = "`" * max(3, _longest_backticks(text) + 1)
    return [fence + info, _CONTROL.sub("", text), fence]


def md_code(value: Any) -> str:
    """`value` as an inline code span on one line, whatever backticks it holds."""
    text = " ".join(_CONTROL.sub("", str(value)).split())
    longest = _longest_backticks(text)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if longest else f"`{text}`"


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub Markdown table; every header and cell through `md_cell`."""
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def esc(value: Any) -> str:
    """HTML-escaped text: every string from models, backends, errors or the environment."""
    return html.escape("–" if value is None else str(value), quote=True)


def plain(text: object) -> str:
    """A label plotly shows as literal text: its pseudo-HTML (<a>, <b>, ...) is neutralised."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
