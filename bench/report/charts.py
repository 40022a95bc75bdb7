"""Plotly figures for a run. A cell that failed parity is marked in every speed chart."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bench.errors import BenchError
from bench.report import fields
from bench.report.format import cell_label, plain

FAIL_COLOR = "#d62728"
MAX_BOX_POINTS = 1000


def _series(frame: pd.DataFrame) -> pd.DataFrame:
    """`series`: the cell label without the batch size (the x axis), and without the model
    when the run has one."""
    frame = frame.copy()
    many_models = frame["model"].nunique() > 1
    frame["series"] = [
        plain(cell_label(r, model=many_models, batch=False)) for _, r in frame.iterrows()
    ]
    return frame


def _speed_chart(frame: pd.DataFrame, column: str, title: str, y_title: str) -> go.Figure:
    frame = _series(frame[frame[column].notna()])
    fig = go.Figure()
    for name, group in frame.groupby("series", sort=True):
        group = group.sort_values("batch_size")
        failed = group["status"] == "parity_failed"
        error = None
        if column == "center_us":
            error = dict(
                type="data",
                symmetric=False,
                array=(group["ci95_high_us"] - group["center_us"]).fillna(0),
                arrayminus=(group["center_us"] - group["ci95_low_us"]).fillna(0),
            )
        fig.add_trace(
            go.Scatter(
                x=group["batch_size"],
                y=group[column],
                error_y=error,
                mode="lines+markers+text",
                name=name + (" ⚠ PARITY FAIL" if failed.any() else ""),
                marker=dict(
                    symbol=["x" if f else "circle" for f in failed],
                    size=[14 if f else 8 for f in failed],
                    line=dict(color=[FAIL_COLOR if f else "white" for f in failed], width=2),
                ),
                text=["PARITY FAIL" if f else "" for f in failed],
                textposition="top center",
                textfont=dict(color=FAIL_COLOR),
                customdata=np.stack([group["p90_us"], group["p99_us"], group["status"]], axis=-1),
                hovertemplate="batch %{x}<br>%{y:.4g}<br>p90 %{customdata[0]:.4g} µs"
                "<br>p99 %{customdata[1]:.4g} µs<br>%{customdata[2]}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(title=title, xaxis_title="batch size", yaxis_title=y_title, height=460)
    batches = sorted(frame["batch_size"].unique())
    fig.update_xaxes(type="log", tickvals=batches, ticktext=[str(b) for b in batches])
    fig.update_yaxes(type="log")
    return fig


def latency_chart(frame: pd.DataFrame) -> go.Figure:
    """Median latency against batch size per backend, with the 95% CI of the median."""
    return _speed_chart(frame, "center_us", "Latency (median, 95% interval; hover: p90/p99)", "µs")


def throughput_chart(frame: pd.DataFrame) -> go.Figure:
    """Items per second against batch size per backend."""
    return _speed_chart(frame, "throughput_items_per_s", "Throughput", "items / s")


RATIO_MARGIN = 2.5  # the log axis reaches this factor beyond the extreme bars, for labels


def ratio_range(low: float, high: float) -> tuple[float, float]:
    """The span of a ratio axis: [low, high] and 1, with room for labels both ways."""
    return min(low, 1.0) / RATIO_MARGIN, max(high, 1.0) * RATIO_MARGIN


def ratio_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks (…, 0.5, 1, 2, 5, 10, …) inside ratio_range(low, high)."""
    bottom, top = ratio_range(low, high)
    ticks = [m * 10.0**e for e in range(-4, 7) for m in (1, 2, 5)]
    inside = [t for t in ticks if bottom <= t <= top]
    if len(inside) > 12:  # a wide range: decades only
        inside = [t for t in inside if math.log10(t).is_integer()]
    return inside


def speedup_chart(frame: pd.DataFrame) -> go.Figure:
    """Speedup over PyTorch eager per backend and batch size, parity failures hatched red.

    Bars grow from 1× (torch) up for faster, down for slower, on a log axis with labelled
    1-2-5 ticks: 1.5× at batch 1 and 30× at batch 32 are both readable, and 2× faster and
    2× slower are the same length. Speedups measured on a busy CPU are marked ⚠.
    """
    frame = _series(frame[frame["speedup_vs_torch"].notna() & (frame["backend"] != "torch")])
    fig = go.Figure()
    for name, group in frame.groupby("series", sort=True):
        failed = list(group["status"] == "parity_failed")
        ratios = [float(v) for v in group["speedup_vs_torch"]]
        busy = [bool(c) for c in group["speedup_contended"]]
        fig.add_trace(
            go.Bar(
                x=group["batch_size"].astype(str),
                base=[1.0] * len(ratios),
                y=[v - 1.0 for v in ratios],
                customdata=ratios,
                name=name + (" ⚠ PARITY FAIL" if any(failed) else ""),
                text=[
                    "PARITY FAIL" if f else f"{v:.2f}×" + (" ⚠" if b else "")
                    for f, v, b in zip(failed, ratios, busy, strict=True)
                ],
                textposition="outside",
                textfont=dict(size=10),
                cliponaxis=False,
                hovertemplate="batch %{x}: %{customdata:.3g}× torch<extra>%{fullData.name}</extra>",
                marker=dict(
                    pattern=dict(shape=["x" if f else "" for f in failed]),
                    line=dict(
                        color=[FAIL_COLOR if f else "rgba(0,0,0,0)" for f in failed], width=3
                    ),
                ),
            )
        )
    fig.add_hline(y=1.0, line_dash="dot")
    # on a log axis an annotation's y is log10 of the value: 0 is 1×
    fig.add_annotation(text="torch eager", x=1, xref="paper", xanchor="right", y=0, yref="y",
                       yanchor="top", showarrow=False)  # fmt: skip
    values = frame["speedup_vs_torch"].astype(float)
    low, high = (values.min(), values.max()) if not values.empty else (1.0, 1.0)
    ticks = ratio_ticks(low, high)
    fig.update_layout(
        title="Speedup over PyTorch eager (items/s ratio; log scale; ⚠ measured on a busy CPU)",
        barmode="group",
        xaxis_title="batch size",
        yaxis_title="× torch (log scale)",
        height=460,
        uniformtext=dict(minsize=9, mode="show"),
    )
    fig.update_yaxes(
        type="log",
        tickvals=ticks,
        ticktext=[f"{t:g}×" for t in ticks],
        range=[math.log10(v) for v in ratio_range(low, high)],
    )
    return fig


def parity_heatmap(frame: pd.DataFrame) -> go.Figure:
    """Error relative to tolerance per (backend, export) × batch; statuses written in cells.
    Skipped cells are left out (the report's skip lines name them)."""
    frame = _series(frame[frame["status"] != "skipped"])
    rows = sorted(frame["series"].unique())
    cols = sorted(frame["batch_size"].unique())
    z: list[list[float | None]] = [[None] * len(cols) for _ in rows]
    text = [[""] * len(cols) for _ in rows]
    for _, r in frame.iterrows():
        i, j = rows.index(r["series"]), cols.index(r["batch_size"])
        ratio = r.get("tol_ratio")
        if r["status"] in ("ok", "parity_failed") and ratio is not None and not pd.isna(ratio):
            z[i][j] = math.log10(max(float(ratio), 1e-6))
            text[i][j] = ("FAIL " if r["status"] == "parity_failed" else "") + f"{ratio:.2g}×tol"
        else:
            text[i][j] = r["status"].upper()
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(c) for c in cols],
            y=rows,
            text=text,
            texttemplate="%{text}",
            colorscale=[[0, "#1a9850"], [0.5, "#fee08b"], [0.75, "#fdae61"], [1, "#d73027"]],
            zmin=-4,
            zmax=2,
            colorbar=dict(title="log10(err / tol)", tickvals=[-4, -2, 0, 2]),
            hoverongaps=False,
        )
    )
    fig.update_layout(
        title="Parity: worst error / tolerance (≤ 1 passes); grey cells did not run",
        xaxis_title="batch size",
        height=max(300, 60 + 40 * len(rows)),
        plot_bgcolor="#dddddd",
    )
    return fig


def distribution_chart(records: Sequence[dict[str, Any]]) -> go.Figure:
    """Box plots of the raw inference samples of every measured cell."""
    fig = go.Figure()
    rng = np.random.default_rng(0)
    for record in fields.cell_records(records):
        timed = fields.timed_block(record)
        if not timed or not timed.get("samples_us"):
            continue
        samples = np.asarray(timed["samples_us"])
        if samples.size > MAX_BOX_POINTS:  # keep the file small; quartiles barely move
            samples = np.sort(rng.choice(samples, MAX_BOX_POINTS, replace=False))
        failed = record["status"] == "parity_failed"
        label = plain(cell_label(record)) + (" ⚠ PARITY FAIL" if failed else "")
        fig.add_trace(
            go.Box(
                y=samples, name=label, boxpoints=False, marker_color=FAIL_COLOR if failed else None
            )
        )
    fig.update_layout(
        title="Latency distributions (raw samples; throughput mode: per round)",
        yaxis_title="µs",
        yaxis_type="log",
        showlegend=False,
        height=520,
    )
    return fig


def cold_start_chart(frame: pd.DataFrame) -> go.Figure:
    """Export, load/compile and first-inference times per cell."""
    frame = frame[frame["load_s"].notna()]
    many_models = frame["model"].nunique() > 1
    label = [plain(cell_label(r, model=many_models)) for _, r in frame.iterrows()]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=label, y=frame["load_s"] * 1e3, name="session / compile (ms)"))
    fig.add_trace(go.Bar(x=label, y=frame["first_run_ms"], name="first inference (ms)"))
    exported = frame["export_s"].notna()
    fig.add_trace(
        go.Bar(
            x=[x for x, e in zip(label, exported, strict=True) if e],
            y=frame.loc[exported, "export_s"] * 1e3,
            name="export (ms, when it was made)",
        )
    )
    fig.update_layout(
        title="Cold start", barmode="group", yaxis_title="ms", yaxis_type="log", height=480
    )
    return fig


def run_charts(frame: pd.DataFrame, records: Sequence[dict[str, Any]]) -> list[go.Figure]:
    """Every chart of a run report, in display order."""
    if frame.empty:
        return []
    return [
        latency_chart(frame),
        throughput_chart(frame),
        speedup_chart(frame),
        parity_heatmap(frame),
        distribution_chart(records),
        cold_start_chart(frame),
    ]


CHART_NAMES = ("latency", "throughput", "speedup", "parity", "distributions", "cold_start")


def png_images(figures: Sequence[go.Figure]) -> dict[str, bytes]:
    """Static PNGs (file name -> bytes) through kaleido, which drives a Chromium (Debian's
    `chromium` works)."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise BenchError("--png needs kaleido: pip install -e '.[png]' (and a Chromium)") from None
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser and "BROWSER_PATH" not in os.environ:
        os.environ["BROWSER_PATH"] = browser
    images = {}
    for name, fig in zip(CHART_NAMES, figures, strict=False):
        try:
            images[f"{name}.png"] = fig.to_image(
                format="png", width=1200, height=fig.layout.height or 500
            )
        except Exception as exc:
            raise BenchError(f"--png: kaleido could not render ({exc}); install chromium") from exc
    return images
