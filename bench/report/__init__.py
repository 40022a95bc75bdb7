"""Reports built from records: the only place that imports pandas and plotly."""

from bench.report.tables import summary_frame, terminal_table, write_reports

__all__ = ["summary_frame", "terminal_table", "write_reports"]
