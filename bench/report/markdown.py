"""report.md: GitHub Markdown for release notes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.report.format import batch_label, export_label, fmt, md_table
from bench.report.frame import summary_frame
from bench.report.tables import accuracy_rows, headline_rows, latency_rows, problem_rows


def markdown_report(records: Sequence[dict[str, Any]], env: dict[str, Any]) -> str:
    """report.md: latency table, accuracy table, problems, environment, reproduction."""
    frame = summary_frame(records)
    parts = ["# bench report", ""]
    if frame.empty:
        return "\n".join([*parts, "No cells were run."]) + "\n"
    counts = frame["status"].value_counts().to_dict()
    passed = int((frame["status"] == "ok").sum())
    ran = int(frame["status"].isin(["ok", "parity_failed"]).sum())
    parts.append(
        f"**{'✅' if passed == ran else '❌'} parity: {passed} of {ran} measured cells pass**"
    )
    parts.append("")
    parts.append("Cells: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    headline = headline_rows(frame)
    if headline:
        parts += ["", "## Headline: fastest backend that passed parity", ""]
        parts.append(
            md_table(
                ["model", "batch", "precision", "fastest passing", "median µs", "items/s",
                 "vs torch", "faster but failed parity"],
                [[h["model"], f"{h['batch_size']} {h['dims']}".strip(), h["precision"], f"{h['backend']} ({h['export']})",
                  fmt(h["center_us"]), fmt(h["items_per_s"], ".0f"),
                  f"{h['speedup_vs_torch']:.2f}×" if h["speedup_vs_torch"] else "–",
                  h["faster_but_wrong"] or "–"] for h in headline],
            )
        )  # fmt: skip
    parts += [
        "",
        "## Latency (inference only, inputs bound once; e2e = host arrays in and out)",
        "",
    ]
    parts.append(md_table(*latency_rows(frame)))
    references = sorted({r.get("reference") or "torch eager fp32" for r in records})
    parts += ["", f"## Accuracy against the reference ({'; '.join(references)})", ""]
    parts.append(md_table(*accuracy_rows(frame)))
    problems = problem_rows(frame)
    if problems:
        parts += ["", "## Failures and skips", ""]
        parts.append(
            md_table(
                ["model", "backend", "export", "batch", "precision", "status", "reason"], problems
            )
        )
    warned = frame[frame["warnings"] != ""]
    if not warned.empty:
        parts += ["", "## Stability warnings", ""]
        parts.append(
            md_table(
                ["model", "backend", "export", "batch", "warning"],
                [
                    [r["model"], r["backend"], export_label(r), batch_label(r), r["warnings"]]
                    for _, r in warned.iterrows()
                ],
            )
        )
    versions = env.get("versions") or {}
    parts += ["", "## Environment", ""]
    parts.append(
        md_table(
            ["what", "value"],
            [
                [
                    "CPU",
                    f"{env.get('cpu_model')} ({env.get('physical_cores')} physical / "
                    f"{env.get('logical_cores')} logical cores)",
                ],
                ["memory", f"{env.get('memory_gib')} GiB"],
                ["GPU", ", ".join(env.get("gpus") or []) or "none"],
                ["platform", env.get("platform")],
                ["python", env.get("python")],
                *[[name, v] for name, v in sorted(versions.items()) if v],
                ["bench", f"{env.get('bench_version')} ({env.get('bench_commit')})"],
            ],
        )
    )
    command = " ".join(env.get("command") or [])
    parts += ["", "## Reproduce", "", "```", command, "```", ""]
    return "\n".join(parts)
