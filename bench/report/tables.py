"""summary.csv, report.md and the terminal table: pure functions over records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.config import BASELINE_BACKEND

KEY_COLUMNS = [
    "model",
    "backend",
    "exporter",
    "opset_requested",
    "opset_actual",
    "batch_size",
    "precision",
]


def _worst_parity(record: dict[str, Any]) -> dict[str, Any]:
    parity = record.get("parity") or {}
    outputs = parity.get("outputs") or []

    def worst(key: str, pick=max):
        values = [o[key] for o in outputs if o.get(key) is not None]
        return pick(values) if values else None

    return {
        "parity_passed": parity.get("passed"),
        "max_abs_err": worst("max_abs_err"),
        "max_rel_err": worst("max_rel_err"),
        "mean_abs_err": worst("mean_abs_err"),
        "cosine": worst("cosine", min),
        "frac_beyond_tol": worst("frac_beyond_tol"),
        "tol_ratio": worst("tol_ratio"),
        "nan_inf": sum((o.get("nan_count") or 0) + (o.get("inf_count") or 0) for o in outputs),
        "argmax_agreement": worst("argmax_agreement", min),
        "rtol": parity.get("rtol"),
        "atol": parity.get("atol"),
    }


def summary_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per cell: keys, status, latency statistics, parity, speedup over torch."""
    rows = []
    for record in records:
        latency = (record.get("latency") or {}).get("inference") or {}
        tput = record.get("throughput") or {}
        e2e = (record.get("latency") or {}).get("end_to_end") or {}
        settings = record.get("settings") or {}
        rows.append(
            {
                **{key: record.get(key) for key in KEY_COLUMNS},
                "dims": " ".join(f"{k}={v}" for k, v in sorted((record.get("dims") or {}).items())),
                "exporter_used": record.get("exporter_used"),
                "status": record["status"],
                "p50_us": latency.get("p50_us"),
                "mean_us": latency.get("mean_us"),
                "std_us": latency.get("std_us"),
                "min_us": latency.get("min_us"),
                "p90_us": latency.get("p90_us"),
                "p95_us": latency.get("p95_us"),
                "p99_us": latency.get("p99_us"),
                "max_us": latency.get("max_us"),
                "ci95_low_us": latency.get("ci95_low_us"),
                "ci95_high_us": latency.get("ci95_high_us"),
                "n_samples": latency.get("n"),
                "stop_reason": latency.get("stop_reason"),
                "mode": record.get("mode", "latency"),
                "requests": tput.get("requests"),
                "throughput_items_per_s": tput.get("items_per_s_wall")
                or latency.get("throughput_items_per_s"),
                "e2e_p50_us": e2e.get("p50_us"),
                "load_s": (record.get("cold_start") or {}).get("load_s"),
                "export_s": (record.get("export") or {}).get("export_s"),
                "export_cached": (record.get("export") or {}).get("cached"),
                "first_run_ms": (record.get("cold_start") or {}).get("first_run_ms"),
                "peak_rss_mb": (record.get("memory") or {}).get("peak_rss_mb"),
                "effective_precision": settings.get("precision"),
                **_worst_parity(record),
                "warnings": "; ".join(record.get("warnings") or []),
                "reason": (record.get("reason") or "").splitlines()[0]
                if record.get("reason")
                else "",
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # Speedup = items/s over the torch baseline's items/s at the same model, batch, precision
    # (in latency mode that is the ratio of medians).
    baseline = frame[(frame["backend"] == BASELINE_BACKEND) & (frame["status"] == "ok")]
    keys = ["model", "batch_size", "dims", "precision"]
    base_rate = baseline.set_index(keys)["throughput_items_per_s"].to_dict()
    frame["speedup_vs_torch"] = [
        (v / base_rate[k]) if v and base_rate.get(k) else None
        for k, v in zip(
            zip(*(frame[c] for c in keys), strict=True),
            frame["throughput_items_per_s"],
            strict=True,
        )
    ]
    return frame


def _fmt(value: Any, spec: str = ".1f") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def export_label(row: pd.Series) -> str:
    """`exporter opN` (with `→M` when the file holds another opset), `file opN`, or `eager`."""
    if row.get("exporter") == "file":
        actual = row["opset_actual"]
        return f"file op{int(actual)}" if actual is not None and not pd.isna(actual) else "file"
    if pd.isna(row["opset_requested"]) or row["opset_requested"] is None:
        return "eager"
    used = row["exporter_used"] if isinstance(row["exporter_used"], str) else row["exporter"]
    actual = row["opset_actual"]
    label = f"{used} op{int(row['opset_requested'])}"
    if actual is not None and not pd.isna(actual) and int(actual) != int(row["opset_requested"]):
        label += f"→{int(actual)}"
    return label


def _batch(row: pd.Series) -> str:
    """The batch size, with any other dynamic dimension's size beside it."""
    dims = row.get("dims") or ""
    return f"{row['batch_size']} {dims}".strip()


def _status_badge(row: pd.Series, emoji: bool) -> str:
    if row["status"] == "ok":
        return "✅ pass" if emoji else "pass"
    if row["status"] == "parity_failed":
        return "❌ PARITY FAIL" if emoji else "PARITY FAIL"
    return row["status"]


def md_escape(text: Any) -> str:
    return (
        str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
    )


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub Markdown table; every cell escaped."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def latency_rows(frame: pd.DataFrame, emoji: bool = True) -> tuple[list[str], list[list[Any]]]:
    """The latency table; `emoji` badges for Markdown, plain words for HTML."""
    headers = [
        "model",
        "backend",
        "export",
        "batch",
        "precision",
        "status",
        "median µs",
        "95% CI µs",
        "p90 µs",
        "p99 µs",
        "e2e median µs",
        "items/s",
        "vs torch",
    ]
    rows = []
    for _, r in frame.iterrows():
        ci = (
            f"{_fmt(r['ci95_low_us'])}–{_fmt(r['ci95_high_us'])}"
            if r["ci95_low_us"] is not None and not pd.isna(r["ci95_low_us"])
            else "–"
        )
        speed = r.get("speedup_vs_torch")
        rows.append(
            [
                r["model"],
                r["backend"],
                export_label(r),
                _batch(r),
                r["precision"],
                _status_badge(r, emoji),
                _fmt(r["p50_us"]),
                ci,
                _fmt(r["p90_us"]),
                _fmt(r["p99_us"]),
                _fmt(r["e2e_p50_us"]),
                _fmt(r["throughput_items_per_s"], ".0f"),
                f"{speed:.2f}×" if speed is not None and not pd.isna(speed) else "–",
            ]
        )
    return headers, rows


def accuracy_rows(frame: pd.DataFrame, emoji: bool = True) -> tuple[list[str], list[list[Any]]]:
    """The accuracy table of every cell that produced outputs."""
    headers = [
        "model",
        "backend",
        "export",
        "batch",
        "precision",
        "parity",
        "max abs err",
        "max rel err",
        "cosine",
        "beyond tol",
        "argmax agree",
        "rtol / atol",
    ]
    rows = []
    for _, r in frame.iterrows():
        if r["parity_passed"] is None or pd.isna(r["parity_passed"]):
            continue
        rows.append(
            [
                r["model"],
                r["backend"],
                export_label(r),
                _batch(r),
                r["precision"],
                ("✅ pass" if emoji else "pass")
                if r["parity_passed"]
                else ("❌ FAIL" if emoji else "FAIL"),
                _fmt(r["max_abs_err"], ".2e"),
                _fmt(r["max_rel_err"], ".2e"),
                _fmt(r["cosine"], ".7f"),
                _fmt(r["frac_beyond_tol"], ".2%"),
                _fmt(r["argmax_agreement"], ".0%"),
                f"{_fmt(r['rtol'], 'g')} / {_fmt(r['atol'], 'g')}",
            ]
        )
    return headers, rows


def problem_rows(frame: pd.DataFrame) -> list[list[Any]]:
    bad = frame[~frame["status"].isin(["ok"])]
    return [
        [
            r["model"],
            r["backend"],
            export_label(r),
            _batch(r),
            r["precision"],
            r["status"],
            r["reason"],
        ]
        for _, r in bad.iterrows()
    ]


def headline_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model, batch size and precision: the fastest backend that passed parity.

    Also names a faster backend that failed parity, so a wrong result never hides.
    """
    rows = []
    timed = frame[frame["throughput_items_per_s"].notna()]
    keys = ["model", "batch_size", "dims", "precision"]
    for (model, batch, dims, precision), group in timed.groupby(keys):
        passing = group[group["status"] == "ok"].sort_values("throughput_items_per_s")
        if passing.empty:
            continue
        best = passing.iloc[-1]
        faster_wrong = group[
            (group["status"] == "parity_failed")
            & (group["throughput_items_per_s"] > best["throughput_items_per_s"])
        ]
        rows.append(
            {
                "model": model,
                "batch_size": int(batch),
                "dims": dims,
                "precision": precision,
                "backend": best["backend"],
                "export": export_label(best),
                "p50_us": best["p50_us"],
                "items_per_s": best["throughput_items_per_s"],
                "speedup_vs_torch": best["speedup_vs_torch"],
                "faster_but_wrong": ", ".join(sorted(set(faster_wrong["backend"]))),
            }
        )
    return rows


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
                  _fmt(h["p50_us"]), _fmt(h["items_per_s"], ".0f"),
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
                    [r["model"], r["backend"], export_label(r), _batch(r), r["warnings"]]
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


def terminal_table(records: Sequence[dict[str, Any]]) -> str:
    """A compact fixed-width table for the end of a run."""
    frame = summary_frame(records)
    if frame.empty:
        return "no cells"
    headers = [
        "backend",
        "export",
        "batch",
        "prec",
        "status",
        "median µs",
        "items/s",
        "max abs err",
        "vs torch",
    ]
    rows = []
    for _, r in frame.iterrows():
        speed = r.get("speedup_vs_torch")
        status = {"ok": "ok", "parity_failed": "PARITY FAIL"}.get(r["status"], r["status"])
        rows.append(
            [
                r["backend"],
                export_label(r),
                _batch(r),
                r["precision"],
                status,
                _fmt(r["p50_us"]),
                _fmt(r["throughput_items_per_s"], ".0f"),
                _fmt(r["max_abs_err"], ".1e"),
                f"{speed:.2f}x" if speed is not None and not pd.isna(speed) else "-",
            ]
        )
    models = frame["model"].unique()
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = []
    for model in models:
        lines.append(f"model: {model}")
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for (_, r), row in zip(frame.iterrows(), rows, strict=True):
            if r["model"] == model:
                lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def write_reports(
    run_dir: Path, records: Sequence[dict[str, Any]], env: dict[str, Any], png: bool = False
) -> list[Path]:
    """Write summary.csv, report.md, report.html (and charts/*.png) into `run_dir`."""
    from bench.report.html import html_report

    frame = summary_frame(records)
    csv_path = run_dir / "summary.csv"
    frame.to_csv(csv_path, index=False)
    md_path = run_dir / "report.md"
    md_path.write_text(markdown_report(records, env), encoding="utf-8")
    html_path = run_dir / "report.html"
    html_path.write_text(html_report(records, env), encoding="utf-8")
    paths = [csv_path, md_path, html_path]
    if png:
        from bench.report.charts import run_charts, write_pngs

        paths += write_pngs(run_charts(frame, records), run_dir / "charts")
    return paths
