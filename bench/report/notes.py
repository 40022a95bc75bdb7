"""The short parts of a report: headline rows, failure and skip lines, warnings, footnotes,
the environment. Shared by report.md, report.html and the terminal table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bench.report.format import cell_label, fmt
from bench.report.ranking import Contender, Ranking
from bench.report.tables import CONTENDED, LOOP_MARK, speedup_text

LOOP_NOTE = (f"{LOOP_MARK} one trial only: the interval covers one loop's jitter, not the "
             "variation between trials, so it understates the uncertainty; a small "
             "difference between such cells may not hold in another run.")  # fmt: skip
CONTENDED_NOTE = (f"{CONTENDED}: measured while other processes held a large share of the "
                  "CPU (this cell or its torch baseline); the speedup may not hold on a quiet "
                  "machine.")  # fmt: skip
HEADLINE_HEADERS = ["model", "batch", "precision", "fastest that passed parity",
                    "median µs [95%]", "vs torch"]  # fmt: skip


def _interval(c: Contender) -> str:
    text = fmt(c.center_us)
    if c.low_us is not None and c.high_us is not None:
        text += f" [{fmt(c.low_us)}–{fmt(c.high_us)}]" + (LOOP_MARK if c.loop_interval else "")
    return text


def verdict_text(r: Ranking) -> str:
    """`ort-cpu (dynamo op17)`, or `tied: A (...) and B (...) (could differ by up to 8%)`."""
    if r.fastest is not None:
        alone = " — the only backend that passed parity" if len(r.contenders) == 1 else ""
        return f"{r.fastest.backend} ({r.fastest.export}){alone}"
    if not r.tied:
        return "none: no backend passed parity"
    names = [f"{c.backend} ({c.export})" for c in r.tied]
    joined = ", ".join(names[:-1]) + " and " + names[-1]
    return f"tied: {joined} ({differ_text(r.could_differ)})"


def differ_text(could_differ: float | None) -> str:
    """`could differ by up to 11%`; from twofold on as a factor (`3.4×`)."""
    if could_differ is None:
        return "no interval to tell them apart"
    if could_differ < 1:
        percent = could_differ * 100
        return f"could differ by up to {percent:.2g}%" if percent < 10 else (
            f"could differ by up to {percent:.0f}%")  # fmt: skip
    factor = could_differ + 1
    if factor >= 1000:
        return "could differ more than 1000-fold"
    return f"could differ by up to {factor:.2g}×" if factor < 10 else (
        f"could differ by up to {factor:.0f}×")  # fmt: skip


def headline_rows(rankings: Sequence[Ranking]) -> tuple[list[str], list[list[str]]]:
    """One row per (model, batch, precision): the verdict, its numbers, its speedups."""
    wrong = any(r.faster_but_wrong for r in rankings)
    headers = HEADLINE_HEADERS + (["faster but failed parity"] if wrong else [])
    rows = []
    for r in rankings:
        shown = [r.fastest] if r.fastest else list(r.tied)
        row = [
            r.model, f"{r.batch_size} {r.dims}".strip(),
            r.precision + (f" {r.mode}" if r.mode != "latency" else ""), verdict_text(r),
            " / ".join(_interval(c) for c in shown) or "–",
            " / ".join(speedup_text(c.speedup_vs_torch, c.contended) for c in shown) or "–",
        ]  # fmt: skip
        rows.append(row + ([", ".join(r.faster_but_wrong) or "–"] if wrong else []))
    return headers, rows


def headline_notes(rankings: Sequence[Ranking]) -> list[str]:
    shown = [c for r in rankings for c in ([r.fastest] if r.fastest else r.tied)]
    return ([LOOP_NOTE] if any(c.loop_interval for c in shown) else []) + (
        [CONTENDED_NOTE] if any(c.contended for c in shown) else []
    )


def table_notes(frame: pd.DataFrame) -> list[str]:
    """The footnotes the cell tables' markers need."""
    measured = frame[frame["status"].isin(["ok", "parity_failed"])]
    return ([LOOP_NOTE] if (measured["interval_scope"] == "loop").any() else []) + (
        [CONTENDED_NOTE] if measured["speedup_contended"].any() else []
    )


def failure_lines(frame: pd.DataFrame) -> list[str]:
    """One line per cell that failed (parity, export, crash, timeout, error)."""
    bad = frame[~frame["status"].isin(["ok", "skipped"])]
    return [f"{cell_label(r)}: {r['status']} — {r['reason'] or 'no reason recorded'}"
            for _, r in bad.iterrows()]  # fmt: skip


def skip_lines(frame: pd.DataFrame) -> list[str]:
    """`ort-cuda: 9 cells skipped — <reason>`: one line per (backend, reason)."""
    skipped = frame[frame["status"] == "skipped"]
    counts: dict[tuple[str, str], int] = {}
    for _, r in skipped.iterrows():
        key = (r["backend"], r["reason"] or "no reason recorded")
        counts[key] = counts.get(key, 0) + 1
    return [f"{backend}: {n} cell{'s' if n > 1 else ''} skipped — {reason}"
            for (backend, reason), n in counts.items()]  # fmt: skip


def warning_rows(frame: pd.DataFrame) -> list[list[str]]:
    """[cell, warnings] for each cell with stability or contention warnings, contended first."""
    warned = frame[(frame["warnings"] != "") | frame["contended"]]
    warned = warned.sort_values("contended", ascending=False, kind="stable")
    return [[cell_label(r), r["warnings"] or f"{r['contended_trials']} contended trials"]
            for _, r in warned.iterrows()]  # fmt: skip


def env_rows(env: Mapping[str, Any], full: bool = False) -> list[list[Any]]:
    """The machine and versions; `full` adds the host name and CPU governor."""
    versions = env.get("versions") or {}
    cpu = (f"{env.get('cpu_model')} ({env.get('physical_cores')} physical / "
           f"{env.get('logical_cores')} logical cores)")  # fmt: skip
    return [
        *([["host", env.get("host")]] if full else []),
        ["CPU", cpu],
        ["memory", f"{env.get('memory_gib')} GiB"],
        *([["CPU governor", env.get("cpu_governor") or "not readable"]] if full else []),
        ["GPU", ", ".join(env.get("gpus") or []) or "none"],
        ["platform", env.get("platform")],
        ["python", env.get("python")],
        *[[name, v] for name, v in sorted(versions.items()) if v],
        ["bench", f"{env.get('bench_version')} ({env.get('bench_commit')})"],
    ]


def status_line(frame: pd.DataFrame) -> tuple[bool, str]:
    """(all measured cells pass, `parity: P of M measured cells pass · cells: ...`)."""
    passed = int((frame["status"] == "ok").sum())
    ran = int(frame["status"].isin(["ok", "parity_failed"]).sum())
    counts = ", ".join(f"{v} {k}" for k, v in sorted(frame["status"].value_counts().items()))
    return passed == ran, f"parity: {passed} of {ran} measured cells pass · cells: {counts}"


def resolution_line(records: Sequence[Mapping[str, Any]]) -> str | None:
    """What this run can resolve: the median over measured cells of the change a comparison
    with a run like it could detect (alpha 0.01, power 0.8, from the spread between trials)."""
    from bench.stats import detectable_change

    found = []
    for record in records:
        if record.get("kind", "cell") != "cell" or record.get("status") not in (
            "ok",
            "parity_failed",
        ):
            continue
        timed = (record.get("latency") or {}).get("inference") or record.get("throughput") or {}
        spread, trials = timed.get("trial_spread"), timed.get("n_trials") or 0
        change = detectable_change(spread, trials) if isinstance(spread, float) else None
        if change is not None:
            found.append(change)
    if not found:
        return None
    found.sort()
    return (f"This run resolves changes of about {found[len(found) // 2]:.0%} (median over "
            f"{len(found)} cells; range {found[0]:.0%}-{found[-1]:.0%}): the smallest difference "
            "`bench compare` could call against a run like it, from the spread between trials "
            "(α 0.01, power 80%). Smaller differences read as \"cannot resolve\".")  # fmt: skip
