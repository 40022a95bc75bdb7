"""The per-op-type section of `bench compare` (bench.compare_ops) in Markdown, HTML and the
terminal: per profiled cell, the timed ratio beside the op types that moved."""

from __future__ import annotations

from collections.abc import Sequence

from bench.compare_ops import CHANGE, MIN_SHARE, CellOps
from bench.comparison import Comparison
from bench.report.compare_report import key_label
from bench.report.format import esc, md_table, md_text
from bench.report.html import html_table

HEADERS = ["cell", "run", "op type", "family", "baseline µs", "run µs", "ratio",
           "share base → run", "change"]  # fmt: skip
METHOD = (f"Per op type, from each cell's profiled pass (--profile): µs per inference as the "
          f"runtime's profiler saw them. One averaged pass, not trials: an op type is called "
          f"slower or faster when its time moved beyond {CHANGE:g}x either way and it holds at "
          f"least {MIN_SHARE:.0%} of either side's node time; new and gone op types are fusions "
          f"or conversions that one side has and the other not.")  # fmt: skip


def _timed_ratio(comparison: Comparison | None, cell: CellOps) -> str:
    for c in comparison.cells if comparison else []:
        if c.key == cell.key and c.other == cell.other and c.ratio:
            return f"{c.ratio:.2f}x timed ({c.verdict})"
    return "timed ratio –"


def story_lines(cells: Sequence[CellOps], comparison: Comparison | None) -> list[str]:
    """One line per profiled cell: `label in run: 1.30x timed (slower); Conv 1.80x, ...`."""
    return [f"{key_label(c.key)} in {c.other}: {_timed_ratio(comparison, c)}; node time "
            f"{c.base_node_us:.1f} → {c.other_node_us:.1f} µs; {c.summary()}" for c in cells]  # fmt: skip


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def op_rows(cells: Sequence[CellOps]) -> list[list[str]]:
    return [[key_label(c.key), c.other, o.op_type, o.family, _f(o.base_us), _f(o.other_us),
             f"{o.ratio:.2f}x" if o.ratio else "–",
             f"{o.base_share:.0%} → {o.other_share:.0%}", o.verdict]
            for c in cells for o in c.changes]  # fmt: skip


def markdown_ops(cells: Sequence[CellOps], comparison: Comparison | None = None) -> list[str]:
    if not cells:
        return []
    parts = ["", "## Per op type (profiled cells)", "", md_text(METHOD), ""]
    parts += [f"- {md_text(line)}" for line in story_lines(cells, comparison)]
    return [*parts, "", md_table(HEADERS, op_rows(cells))]


def html_ops(cells: Sequence[CellOps], comparison: Comparison | None = None) -> str:
    if not cells:
        return ""
    lines = "".join(f"<li>{esc(line)}</li>" for line in story_lines(cells, comparison))
    return (f"<h2>Per op type (profiled cells)</h2><p>{esc(METHOD)}</p><ul>{lines}</ul>"
            + html_table(HEADERS, op_rows(cells)))  # fmt: skip


def terminal_ops(cells: Sequence[CellOps], comparison: Comparison | None = None) -> str:
    if not cells:
        return ""
    lines = ["per op type (profiled cells):"]
    for cell, line in zip(cells, story_lines(cells, comparison), strict=True):
        lines.append(f"  {line}")
        for o in cell.changes:
            if o.verdict != "unchanged":
                ratio = f"{o.ratio:.2f}x" if o.ratio else o.verdict
                lines.append(f"    {o.op_type:<24} {_f(o.base_us):>9} → {_f(o.other_us):>9} µs "
                             f"{ratio:>8}  {o.verdict}")  # fmt: skip
    return "\n".join(lines)
