"""Terminal, Markdown and HTML output of a `Comparison`."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from bench.comparison import ALPHA, JOIN_KEYS, Comparison
from bench.comparison import verdict as judge
from bench.gate import GateResult
from bench.report.format import cell_label, esc, md_table, md_text, plain
from bench.report.html import html_table, page
from bench.stats import RatioTest

HEADERS = ["cell", "run", "baseline µs", "run µs", "ratio", "vs control", f"judged {1 - ALPHA:.0%} CI", "p",
           "detectable", "verdict", "comparable", "parity drift"]  # fmt: skip
METHOD = ("Ratio = run / baseline of the trial-level estimates (above 1: slower). Verdicts come "
          "from Welch's t test on the log trial medians: `slower`/`faster` when p < 0.01, the "
          "interval excludes 1 and the change is at least the detectable change (α 0.01, power "
          "80%, from the spread between trials); `cannot resolve` when the runs are too noisy to "
          "tell; `unchanged` otherwise.")  # fmt: skip


def key_label(key: tuple) -> str:
    """A join key's cell label, in the format of every other report (bench.report.format)."""
    return cell_label(dict(zip(JOIN_KEYS, key, strict=True)))


def _num(value: Any, spec: str) -> str:
    if value is None:
        return "–"
    if spec == ".2g" and value == 0:
        return "<1e-300"  # below double precision: the normal approximation underflowed
    return format(value, spec)


#: Beyond these a ratio's bound or a detectable change says only "unbounded" (a comparison
#: of a few noisy trials gives intervals like 0.000-6270991.833).
RATIO_SHOWN = (0.001, 1000.0)
MDE_SHOWN = 10.0


def _bound(value: float) -> str:
    low, high = RATIO_SHOWN
    return f"<{low:g}" if value < low else f">{high:g}" if value > high else f"{value:.3f}"


def _us(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 1e9 else f"{value:.3g}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else _bound(value)


def _mde(value: float | None) -> str:
    if value is None:
        return "–"
    return f">{MDE_SHOWN:.0%}" if value > MDE_SHOWN else f"{value:.1%}"


def _no_env(comparison: Comparison) -> str:
    if comparison.env_unknown:
        return (f"Not known: the environment of {', '.join(comparison.env_unknown)} could not be "
                "read (env.json), so only run settings were compared.")  # fmt: skip
    return "None."


def _control_said(control: RatioTest) -> str:
    if judge(control) == "unchanged":
        return "no change"
    return "a change it cannot resolve"


def comparison_rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    for c in comparison.cells:
        ci = f"{_bound(c.ratio_low)}–{_bound(c.ratio_high or 0.0)}" if c.ratio_low else "–"
        rows.append([
            key_label(c.key), c.other, _us(c.base_median_us), _us(c.other_median_us),
            _ratio(c.ratio), _ratio(c.ratio_vs_control), ci, _num(c.p_value, ".2g"),
            _mde(c.mde), c.verdict,
            "yes" if c.comparable else f"NO: {c.not_comparable_reason}", c.parity_drift or "–",
        ])  # fmt: skip
    return rows


def geomean_rows(comparison: Comparison) -> list[list[str]]:
    return [
        [run, backend, _bound(value)]
        for (run, backend), value in sorted(comparison.geomeans.items())
    ]


def env_rows(comparison: Comparison) -> list[list[str]]:
    return [[run, name, str(a), str(b)] for run, diffs in comparison.env_differences.items()
            for name, a, b in diffs]  # fmt: skip


def basis_lines(comparison: Comparison) -> list[str]:
    """Which ratio the verdicts used per run, the control's own move, and whole-run moves."""
    lines = []
    for run in comparison.others:
        mine = [c for c in comparison.cells if c.other == run and c.comparable and c.ratio]
        if mine and all(c.ratio_low is None for c in mine):
            lines.append(f"{run}: no verdicts: every cell has fewer than two trials on a side "
                         "(--trials 1), so no ratio was judged, raw or relative")  # fmt: skip
            continue
        control = comparison.control.get(run)
        if comparison.basis.get(run) == "control" and control is not None:
            lines.append(f"{run}: verdicts use ratios relative to the control workload (which "
                         f"ran {control.ratio:.3f}x the baseline's time, {1 - ALPHA:.0%} CI "
                         f"{control.low:.3f}–{control.high:.3f})")  # fmt: skip
        elif comparison.normalize == "none":
            lines.append(f"{run}: verdicts use raw ratios (--normalize none)")
        elif control is not None:
            lines.append(f"{run}: verdicts use raw ratios: the control workload ran "
                         f"{control.ratio:.3f}x the baseline's time ({1 - ALPHA:.0%} CI "
                         f"{control.low:.3f}–{control.high:.3f}, detectable {_mde(control.mde)}), "
                         f"{_control_said(control)}, so 'vs control' is shown, not judged "
                         "(--normalize control judges it)")  # fmt: skip
        else:
            why_not = comparison.no_control.get(run) or "no control workload to judge by"
            lines.append(f"{run}: verdicts use raw ratios ({why_not})")
        if comparison.moved_together.get(run):
            lines.append(f"{run}: {comparison.moved_together[run]}")
    return lines


def markdown_comparison(comparison: Comparison, gate: GateResult | None = None) -> str:
    parts = [f"# bench compare: baseline {md_text(comparison.baseline)}", ""]
    parts += [*(f"> ⚠ {md_text(line)}" for line in comparison.caveats), ""] * bool(
        comparison.caveats
    )
    parts += [METHOD, ""]
    parts += [f"- {md_text(line)}" for line in basis_lines(comparison)] + [""]
    parts.append(md_table(HEADERS, comparison_rows(comparison)))
    parts += ["", "## Geometric mean of ratios per backend (comparable cells)", ""]
    parts.append(md_table(["run", "backend", "geomean ratio"], geomean_rows(comparison)))
    parts += ["", "## Environment differences", ""]
    env = env_rows(comparison)
    parts.append(md_table(["run", "field", "baseline", "run"], env) if env else _no_env(comparison))
    missing = [(run, key_label(k)) for run, keys in comparison.only_in.items() for k in keys]
    if missing:
        parts += ["", "## Cells in one run only", ""]
        parts.append(md_table(["only in", "cell"], [list(m) for m in missing]))
    if gate is not None:
        parts += ["", "## Regression gate", "", md_text(gate.rule), "", md_text(gate.summary), ""]
        parts += [f"- {md_text(g)}" for g in gate.failures] or ["No regression."]
        if gate.not_failing:
            parts += ["", "Slower, but not failing the gate:", ""]
            parts += [f"- {md_text(g)}" for g in gate.not_failing]
    return "\n".join(parts) + "\n"


def comparison_chart(comparison: Comparison) -> go.Figure:
    fig = go.Figure()
    colors = {"slower": "#d62728", "faster": "#2ca02c"}  # any other verdict: grey
    verdicts = sorted({c.verdict for c in comparison.cells}, key=lambda v: (v not in colors, v))
    for verdict in verdicts:
        color = colors.get(verdict, "#7f7f7f")
        bars = [(c, c.ratio) for c in comparison.cells if c.verdict == verdict and c.ratio]
        if not bars:
            continue
        fig.add_trace(go.Bar(
            x=[plain(f"{key_label(c.key)} [{c.other}]") for c, _ in bars],
            y=[ratio for _, ratio in bars],
            error_y=dict(type="data", symmetric=False,
                         array=[(c.ratio_high or ratio) - ratio for c, ratio in bars],
                         arrayminus=[ratio - (c.ratio_low or ratio) for c, ratio in bars]),
            marker=dict(color=color, pattern=dict(shape=["x" if not c.comparable or c.parity_drift else "" for c, _ in bars])),
            name=verdict,
        ))  # fmt: skip
    fig.add_hline(y=1.0, line_dash="dot", annotation_text="baseline")
    fig.update_layout(title="Median ratio against the baseline (hatched: not comparable or parity drift)",
                      yaxis_title="run / baseline", height=560)  # fmt: skip
    return fig


def html_comparison(comparison: Comparison, gate: GateResult | None = None, extra: str = "") -> str:
    """compare.html; `extra` is HTML of further sections (the per-op-type one)."""
    sections = [f"<h1>bench compare: baseline {plain(comparison.baseline)}</h1>",
                *(f"<p class='warn'><b>⚠ {esc(line)}</b></p>" for line in comparison.caveats),
                f"<p>{esc(METHOD)}</p>",
                "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in basis_lines(comparison))
                + "</ul>",
                html_table(HEADERS, comparison_rows(comparison)),
                "<h2>Geometric mean per backend</h2>",
                html_table(["run", "backend", "geomean ratio"], geomean_rows(comparison)),
                "<h2>Environment differences</h2>",
                html_table(["run", "field", "baseline", "run"], env_rows(comparison))
                if env_rows(comparison) else f"<p>{esc(_no_env(comparison))}</p>"]  # fmt: skip
    if gate is not None:
        rows = [[g, "fails"] for g in gate.failures] + [
            [g, "not failing"] for g in gate.not_failing
        ]
        sections.append(
            f"<h2>Regression gate</h2><p>{esc(gate.rule)}</p><p>{esc(gate.summary)}</p>"
            + (html_table(["cell", "gate"], rows) if rows else "<p>No regression.</p>")
        )
    if extra:
        sections.append(extra)
    return page("bench compare", sections, [comparison_chart(comparison)])


def terminal_comparison(comparison: Comparison) -> str:
    rows = [[r[0], r[1], r[4], r[5], r[6], r[8], r[9], r[10] if r[10] != "yes" else "",
             r[11] if r[11] != "–" else ""] for r in comparison_rows(comparison)]  # fmt: skip
    headers = ["cell", "run", "ratio", "vs control", f"judged {1 - ALPHA:.0%} CI", "detectable", "verdict",
               "comparable", "parity drift"]  # fmt: skip
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    for row in geomean_rows(comparison):
        lines.append(f"geomean {row[1]} in {row[0]}: {row[2]}")
    for row in env_rows(comparison):
        lines.append(f"env differs in {row[0]}: {row[1]}: {row[2]} -> {row[3]}")
    counts: dict[str, int] = {}
    for cell in comparison.cells:
        counts[cell.verdict] = counts.get(cell.verdict, 0) + 1
    lines.append("verdicts: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    for run, keys in comparison.only_in.items():
        if keys:
            shown = ", ".join(key_label(k) for k in keys[:3])
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            cells = f"{len(keys)} cell{'s' if len(keys) > 1 else ''}"
            lines.append(f"only in {run} (not compared): {cells}: {shown}{more}")
    lines += basis_lines(comparison)
    return "\n".join(lines)
