"""write_reports: every report file of a run folder, written as one set.

Each file is written to a temporary name beside its place and renamed into place only once
every file of the set was written; on a failure (disk full, read-only folder) the temporary
files are removed and the reports already there stay as they were (`WriteFailed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.diskio import WriteFailed, write_atomic
from bench.report.charts import png_images, run_charts
from bench.report.frame import summary_frame
from bench.report.html_report import html_report
from bench.report.machines import grouped_html, grouped_markdown, machine_groups
from bench.report.markdown import markdown_report


def write_reports(
    run_dir: Path,
    records: Sequence[dict[str, Any]],
    env: dict[str, Any],
    png: bool = False,
    caveats: Sequence[str] = (),
) -> list[Path]:
    """Write summary.csv, report.md, report.html (and charts/*.png) into `run_dir`;
    `caveats` are lines about the folder itself (unreadable records, env.json damaged)."""
    frame = summary_frame(records)
    groups = machine_groups(records, env)  # a merge of shards from several machines
    markdown = (
        grouped_markdown(groups, caveats) if groups else markdown_report(records, env, caveats)
    )
    html = grouped_html(groups, caveats) if groups else html_report(records, env, caveats)
    files = {
        run_dir / "summary.csv": frame.to_csv(index=False).encode("utf-8"),
        run_dir / "report.md": markdown.encode("utf-8"),
        run_dir / "report.html": html.encode("utf-8"),
    }
    if png:
        charts = run_dir / "charts"
        images = png_images(run_charts(frame, records))
        try:
            charts.mkdir(exist_ok=True)
        except OSError as exc:
            raise WriteFailed(charts, exc) from None
        files.update({charts / name: data for name, data in images.items()})
    write_atomic(files)
    return list(files)
