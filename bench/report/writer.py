"""write_reports: every report file of a run folder, in one place."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report.charts import run_charts, write_pngs
from bench.report.frame import summary_frame
from bench.report.html_report import html_report
from bench.report.markdown import markdown_report


def write_reports(
    run_dir: Path, records: Sequence[dict[str, Any]], env: dict[str, Any], png: bool = False
) -> list[Path]:
    """Write summary.csv, report.md, report.html (and charts/*.png) into `run_dir`."""
    frame = summary_frame(records)
    csv_path = run_dir / "summary.csv"
    frame.to_csv(csv_path, index=False)
    md_path = run_dir / "report.md"
    md_path.write_text(markdown_report(records, env), encoding="utf-8")
    html_path = run_dir / "report.html"
    html_path.write_text(html_report(records, env), encoding="utf-8")
    paths = [csv_path, md_path, html_path]
    if png:
        paths += write_pngs(run_charts(frame, records), run_dir / "charts")
    return paths
