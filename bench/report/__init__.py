"""Reports built from records: the only place that imports pandas and plotly.

Layers, each importing only from those above it: format (leaf: labels, numbers, escaping)
-> frame (summary_frame) -> tables, charts, html (building blocks) -> markdown, html_report
-> writer (write_reports). compare_report uses format and html.
"""

from bench.report.frame import summary_frame
from bench.report.tables import terminal_table
from bench.report.writer import write_reports

__all__ = ["summary_frame", "terminal_table", "write_reports"]
