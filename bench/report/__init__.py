"""Reports built from records: the only place that imports pandas and plotly.

Layers, each importing only from those before it (tests/test_report.py checks it):
format (the leaf: labels, numbers, escaping, the Markdown table) -> fields (a record's timing
fields, old and new), explained (a record's parity explanation as columns), bugreport (a
failed cell as a bug report) -> frame (summary_frame), ranking (rankings that admit ties) ->
tables (cell table rows), charts, html (page building blocks) -> notes (headline, failure,
skip and warning lines, environment) -> markdown, html_report, terminal -> machines (a
merge of several machines' shards, one section each) -> writer.
compare_report uses format and html only.
"""

from bench.report.frame import summary_frame
from bench.report.terminal import terminal_table
from bench.report.writer import write_reports

__all__ = ["summary_frame", "terminal_table", "write_reports"]
