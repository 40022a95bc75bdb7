"""Compare runs (machines, releases, settings) cell by cell, on the trial level.

Pure functions over records: no I/O, no pandas. The time ratio is other / baseline (above 1:
slower), as the ratio of the geometric means of the trial medians. Its interval, p-value and
minimum detectable effect come from Welch's t test on the log trial medians (bench.stats):
the spread between trials, never the jitter inside a loop. A cell is `slower` or `faster`
only when p < ALPHA, the interval excludes 1 and the change is at least the minimum
detectable effect; a smaller change is `cannot resolve`, as is a cell whose runs are too
noisy to detect a change of GATE_HINT; otherwise `unchanged`.

Both runs measured the control workload (bench.control): each cell's ratio is also reported
relative to the control's ratio (unless `normalize="none"`), which removes what the machine did
between the runs. The verdicts use that relative ratio with `normalize="control"`, or with
"auto" (the default) when the control itself resolved a change; otherwise raw ratios: dividing
by it when the machine had not moved only adds the control's own noise to every interval
(measured on a shared 2-core machine: README, "How bench measures").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.control import same_workload
from bench.record import model_hashes
from bench.stats import RatioTest, ratio_test

ALPHA = 0.01
POWER = 0.8
#: Verdicts that judged a cell (the others: `cannot resolve`, `not measured`).
JUDGED = ("slower", "faster", "unchanged")
GATE_HINT = 0.05  # a run that cannot resolve a 5% change cannot call a cell unchanged
MOVED_TOGETHER = 0.8  # this share of cells on one side of 1: the whole run moved
DRIFT_FACTOR = 10.0
JOIN_KEYS = ("model", "backend", "exporter", "opset_requested", "batch_size", "dims", "precision",
             "mode")  # fmt: skip
ENV_FIELDS = ("host", "cpu_model", "logical_cores", "physical_cores", "memory_gib", "gpus",
              "platform", "python", "bench_commit")  # fmt: skip


@dataclass(frozen=True)
class Run:
    """One run folder's content."""

    name: str
    records: list[dict[str, Any]]
    env: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)  # run.json's, when present
    unreadable: int = 0  # results.jsonl lines that could not be read (skipped)


@dataclass(frozen=True)
class CellComparison:
    """One joined cell: baseline against another run."""

    key: tuple
    other: str
    base_median_us: float | None
    other_median_us: float | None
    ratio: float | None  # raw: other / baseline
    ratio_low: float | None  # interval of the ratio the verdict uses
    ratio_high: float | None
    p_value: float | None
    verdict: str  # "faster" | "slower" | "unchanged" | "cannot resolve" | "not measured"
    comparable: bool
    not_comparable_reason: str | None
    parity_drift: str | None
    base_status: str
    other_status: str
    ratio_vs_control: float | None = None  # the ratio divided by the control's ratio
    mde: float | None = None  # smallest relative change this comparison could detect
    basis: str = "raw"  # which ratio the verdict used: "raw" or "control"
    log_se: float | None = None  # the verdict's test: standard error of the log ratio
    df: float | None = None  # and its Welch degrees of freedom
    base_trials: int = 0  # usable trial medians on each side
    other_trials: int = 0

    @property
    def judged_ratio(self) -> float | None:
        """The ratio the verdict judged: relative to the control when it was, else raw."""
        return self.ratio_vs_control if self.basis == "control" else self.ratio


@dataclass
class Comparison:
    """Everything `compare` found."""

    baseline: str
    others: list[str]
    cells: list[CellComparison] = field(default_factory=list)
    geomeans: dict[tuple[str, str], float] = field(default_factory=dict)  # (other, backend)
    env_differences: dict[str, list[tuple[str, Any, Any]]] = field(default_factory=dict)
    #: Lines about the run folders themselves (unreadable records, a damaged env.json).
    caveats: list[str] = field(default_factory=list)
    only_in: dict[str, list[tuple]] = field(default_factory=dict)
    control: dict[str, RatioTest | None] = field(default_factory=dict)  # per other run
    basis: dict[str, str] = field(default_factory=dict)  # per other run: "raw" | "control"
    moved_together: dict[str, str] = field(default_factory=dict)  # per other run
    no_control: dict[str, str] = field(default_factory=dict)  # per other run: why none, or ""
    env_unknown: list[str] = field(default_factory=list)  # runs whose env.json was unreadable
    normalize: str = "auto"  # as asked: "auto" | "control" | "none"
    #: Lines about records whose trials could not be used (also in `caveats`).
    damaged: list[str] = field(default_factory=list)
    unreadable: dict[str, int] = field(default_factory=dict)  # per run: skipped records
    missing: dict[str, list[tuple]] = field(default_factory=dict)  # per other run: baseline's


def _timed(record: dict[str, Any]) -> dict[str, Any] | None:
    latency = record.get("latency")
    timed = (latency.get("inference") if isinstance(latency, dict) else None) or record.get(
        "throughput"
    )
    return timed if isinstance(timed, dict) else None


def _usable(value: Any) -> bool:
    """A trial median a ratio can be taken of: a finite positive number."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)  # fmt: skip


def checked_trial_medians(record: dict[str, Any]) -> tuple[list[float], int]:
    """(the usable medians of the trials a record's statistics used, how many of those trials
    had no usable median: missing, not a number, not finite, zero or negative; or all of them
    when their geometric mean is not the record's `center_us`, which bench computes from
    them: the record was altered)."""
    timed = _timed(record) or {}
    found = timed.get("trials")
    trials: list[Any] = found if isinstance(found, list) else []
    used = [t if isinstance(t, dict) else {} for t in trials]
    medians = [t.get("median_us") for t in used if t.get("used", True)]
    if not medians and timed.get("center_us") is not None:  # one loop (schema 2)
        center = timed["center_us"]
        return ([float(center)], 0) if _usable(center) else ([], 1)
    good = [float(m) for m in medians if m is not None and _usable(m)]
    center = timed.get("center_us")
    if good and len(good) == len(medians) and center is not None and _usable(center):
        geomean = math.exp(sum(map(math.log, good)) / len(good))
        if abs(geomean / float(center) - 1) > 1e-6:  # bench writes the one from the other
            return [], len(medians)  # the trials contradict their record: none is trusted
    return good, len(medians) - len(good)


def trial_medians(record: dict[str, Any]) -> list[float]:
    """The usable medians of the trials a record's statistics used."""
    return checked_trial_medians(record)[0]


def control_test(
    base: Sequence[dict[str, Any]], other: Sequence[dict[str, Any]],
    names: tuple[str, str] = ("the baseline", "the other run"),
) -> tuple[RatioTest | None, str]:  # fmt: skip
    """The control workload's ratio between two runs, when both measured the same one; else
    None and why not."""
    found = [next((r for r in run if r.get("kind") == "control" and r.get("status") == "ok"),
                  None) for run in (base, other)]  # fmt: skip
    first, second = found
    if first is None and second is None:
        return None, "neither run has a measured control workload"
    if first is None or second is None:
        return None, f"{names[0] if first is None else names[1]} has no measured control workload"
    differ = same_workload(first, second)
    if differ:
        return None, differ
    test = ratio_test(trial_medians(first), trial_medians(second), ALPHA, POWER)
    return test, "" if test else "the control workload has fewer than two trials"


def verdict(test: RatioTest) -> str:
    """slower / faster / unchanged / cannot resolve, as the module docstring says."""
    excludes_one = test.low > 1 or test.high < 1
    if test.p_value < ALPHA and excludes_one and abs(test.ratio - 1) >= test.mde:
        return "slower" if test.ratio > 1 else "faster"
    if excludes_one or test.mde > GATE_HINT:
        return "cannot resolve"
    return "unchanged"


def _key(record: dict[str, Any]) -> tuple:
    defaults = {"mode": "latency", "dims": {}}
    values = [record.get(k, defaults.get(k)) for k in JOIN_KEYS]
    values[JOIN_KEYS.index("dims")] = tuple(sorted((values[JOIN_KEYS.index("dims")] or {}).items()))
    return tuple(values)


def _worst_error(record: dict[str, Any]) -> float | None:
    outputs = (record.get("parity") or {}).get("outputs") or []
    errors = [o["max_abs_err"] for o in outputs if o.get("max_abs_err") is not None]
    return max(errors) if errors else None


def parity_drift(base: dict[str, Any], other: dict[str, Any]) -> str | None:
    """A changed verdict, or an error that grew more than tenfold; None when stable."""
    before = (base.get("parity") or {}).get("passed")
    after = (other.get("parity") or {}).get("passed")
    if before is not None and after is not None and before != after:
        return "parity pass -> FAIL" if before else "parity FAIL -> pass"
    e0, e1 = _worst_error(base), _worst_error(other)
    if e0 is not None and e1 is not None and e1 > DRIFT_FACTOR * max(e0, 1e-9):
        return f"max abs error grew {e1 / max(e0, 1e-12):.0f}x ({e0:.2g} -> {e1:.2g})"
    return None


def _comparability(base: dict[str, Any], other: dict[str, Any]) -> str | None:
    if base.get("opset_actual") != other.get("opset_actual"):
        return f"opset written {base.get('opset_actual')} vs {other.get('opset_actual')}"
    h0, h1 = model_hashes(base.get("export"), other.get("export"))
    if h0 != h1:
        return "different ONNX file (sha256)"
    return None


def compare_cell(
    base: dict[str, Any],
    other: dict[str, Any],
    other_name: str,
    control: RatioTest | None = None,
    judge_by_control: bool = True,
) -> CellComparison:
    """Join one cell of the baseline with the same cell of another run. With `control`, the
    ratio relative to the control workload's is reported too, and the verdict uses it unless
    `judge_by_control` is False (then it judges the raw ratio)."""
    reason = _comparability(base, other)
    drift = parity_drift(base, other)
    m0, m1 = trial_medians(base), trial_medians(other)
    common = dict(
        key=_key(base), other=other_name, comparable=reason is None, not_comparable_reason=reason,
        parity_drift=drift, base_status=base["status"], other_status=other["status"],
        base_trials=len(m0), other_trials=len(m1),
    )  # fmt: skip
    if not m0 or not m1:
        return CellComparison(base_median_us=None, other_median_us=None, ratio=None,
                              ratio_low=None, ratio_high=None, p_value=None,
                              verdict="not measured", **common)  # fmt: skip
    center0 = math.exp(sum(map(math.log, m0)) / len(m0))
    center1 = math.exp(sum(map(math.log, m1)) / len(m1))
    raw = ratio_test(m0, m1, ALPHA, POWER)
    if raw is None:  # fewer than two trials on a side: no spread to judge a change by
        return CellComparison(base_median_us=center0, other_median_us=center1,
                              ratio=center1 / center0, ratio_low=None, ratio_high=None,
                              p_value=None, verdict="cannot resolve", **common)  # fmt: skip
    relative = raw.relative_to(control, ALPHA, POWER) if control else None
    used = relative if relative and judge_by_control else raw
    return CellComparison(
        base_median_us=center0, other_median_us=center1, ratio=raw.ratio, ratio_low=used.low,
        ratio_high=used.high, p_value=used.p_value, verdict=verdict(used),
        ratio_vs_control=relative.ratio if relative else None, mde=used.mde,
        basis="control" if used is relative else "raw", log_se=used.log_se, df=used.df, **common,
    )  # fmt: skip


def _cells_moved(cells: Sequence[CellComparison]) -> tuple[str, str] | None:
    """(side, "N% of cells moved SIDE together (geometric mean Gx)") when most cells moved
    one way, by more than 3% on the geometric mean; else None."""
    ratios = [c.ratio for c in cells if c.ratio and c.comparable]
    if len(ratios) < 3:
        return None
    up = sum(r > 1 for r in ratios) / len(ratios)
    geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
    if max(up, 1 - up) < MOVED_TOGETHER or abs(geo - 1) <= 0.03:
        return None
    side = "slower" if up >= MOVED_TOGETHER else "faster"
    return side, f"{max(up, 1 - up):.0%} of cells moved {side} together (geometric mean {geo:.3g}x)"


def moved_together(cells: Sequence[CellComparison], control: RatioTest | None,
                   no_control: str = "neither run has a measured control workload") -> str:  # fmt: skip
    """A sentence when the cells moved together or the control moved, saying what moved them
    as far as the control can tell (the machine, or the code and runtimes); else "".
    `no_control` says why there is no control to tell by, when there is none."""
    moved = _cells_moved(cells)
    control_side = verdict(control) if control is not None else None
    if control is None or control_side not in ("slower", "faster"):
        ran = "" if control is None else (f" (the control workload ran {control.ratio:.2f}x "
                                          f"the baseline's time, {control_side})")  # fmt: skip
        if moved is None:
            return ""
        if control is None:
            return f"{moved[1]}; nothing tells the machine from the code here: {no_control}"
        if control_side == "unchanged":
            return (f"{moved[1]}, the control did not move{ran}: the code or the runtimes, not "
                    "the machine")  # fmt: skip
        return (f"{moved[1]}; the control workload ran {control.ratio:.2f}x the baseline's time, "
                f"a change it cannot resolve (detectable: {control.mde:.0%}), so whether the "
                "machine or the code moved them is not known")  # fmt: skip
    said = (f"the control workload ran {control.ratio:.2f}x the baseline's time (the machine "
            f"itself was {control_side})")  # fmt: skip
    if moved is None:
        return f"{said}; the cells did not move together with it"
    if moved[0] == control_side:
        return f"{moved[1]}, and so did the control: {said}"
    return (f"{moved[1]} while the control moved the other way: {said}; the code or the "
            "runtimes, not the machine")  # fmt: skip


CONFIG_FIELDS = ("threads", "backend_options", "mode", "requests", "timing", "exporter",
                 "allocator", "cpus", "tolerance_overrides")  # fmt: skip


def env_differences(
    base: dict[str, Any],
    other: dict[str, Any],
    base_config: dict[str, Any] | None = None,
    other_config: dict[str, Any] | None = None,
) -> list[tuple[str, Any, Any]]:
    """(field, baseline value, other value) for every machine, version or run setting that
    differs: the reasons two runs may disagree besides the change under test. A run without
    its environment (env.json unreadable: `{}`) has no machine or version fields to differ."""
    found: list[tuple[str, Any, Any]] = []
    if base and other:  # an unreadable env.json ({}) is unknown, not different
        found += [(f, base.get(f), other.get(f)) for f in ENV_FIELDS if base.get(f) != other.get(f)]
        v0, v1 = base.get("versions") or {}, other.get("versions") or {}
        found += [(name, v0.get(name), v1.get(name)) for name in sorted(set(v0) | set(v1))
                  if v0.get(name) != v1.get(name)]  # fmt: skip
    c0, c1 = base_config or {}, other_config or {}
    if c0 and c1:
        # A run from before the allocator policy was measured with the C library's own.
        c0, c1 = ({"allocator": "system", "tolerance_overrides": [], **c} for c in (c0, c1))
        found += [
            (f"config.{f}", c0.get(f), c1.get(f)) for f in CONFIG_FIELDS if c0.get(f) != c1.get(f)
        ]
    return found


def dropped_trials(runs: Sequence[Run]) -> list[str]:
    """A line per run whose records hold trials with no usable median (left out of every
    ratio, as the statistics cannot take a ratio of them)."""
    lines = []
    for run in runs:
        bad = [(r, n) for r in run.records for n in [checked_trial_medians(r)[1]] if n]
        if bad:
            cells = ", ".join(str(r.get("cell_id") or r.get("model")) for r, _ in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            lines.append(f"{run.name}: {len(bad)} record(s) with trials that cannot be used "
                         f"({sum(n for _, n in bad)} trial(s) left out: a median that is not a "
                         f"finite positive number, or trials that do not give the record's own "
                         f"center_us): {cells}{more}")  # fmt: skip
    return lines


def compare(runs: Sequence[Run], baseline: int = 0, normalize: str = "auto") -> Comparison:
    """Compare every run with `runs[baseline]`, cell by cell. `normalize`: "control" judges
    ratios relative to the control workload; "none" judges raw ratios; "auto" judges relative
    to the control only when the control itself resolved a change (the machine moved), since
    dividing by a noisy control otherwise only widens every interval."""
    base = runs[baseline]
    others = [r for i, r in enumerate(runs) if i != baseline]
    result = Comparison(baseline=base.name, others=[r.name for r in others], normalize=normalize)
    result.env_unknown = [r.name for r in runs if not r.env]
    result.caveats = result.damaged = dropped_trials(runs)
    result.unreadable = {r.name: r.unreadable for r in runs if r.unreadable}
    base_cells = {_key(r): r for r in base.records if r.get("kind", "cell") == "cell"}
    for run in others:
        cells = {_key(r): r for r in run.records if r.get("kind", "cell") == "cell"}
        control, why_not = control_test(base.records, run.records, (base.name, run.name))
        if normalize == "control" and control is None:
            from bench.errors import BenchError

            hint = " (a run made with --no-control has none)" if "has no" in why_not else ""
            raise BenchError(f"--normalize control: {base.name} against {run.name}: "
                             f"{why_not}{hint}")  # fmt: skip
        result.no_control[run.name] = why_not
        machine_moved = control is not None and verdict(control) in ("slower", "faster")
        use = control is not None and (normalize == "control" or (normalize == "auto"
                                                                 and machine_moved))  # fmt: skip
        shown = control if normalize != "none" else None  # the vs-control column
        result.control[run.name] = control
        result.basis[run.name] = "control" if use else "raw"
        result.env_differences[run.name] = env_differences(
            base.env, run.env, base.config, run.config
        )
        result.only_in[base.name] = [k for k in base_cells if k not in cells]
        result.only_in[run.name] = [k for k in cells if k not in base_cells]
        result.missing[run.name] = result.only_in[base.name]
        for key, record in base_cells.items():
            if key in cells:
                result.cells.append(compare_cell(record, cells[key], run.name, shown, use))
        by_backend: dict[str, list[float]] = {}
        for cell in result.cells:
            if cell.other == run.name and cell.comparable and cell.ratio:
                by_backend.setdefault(cell.key[1], []).append(math.log(cell.ratio))
        for backend, logs in by_backend.items():
            result.geomeans[(run.name, backend)] = math.exp(sum(logs) / len(logs))
        mine = [c for c in result.cells if c.other == run.name]
        result.moved_together[run.name] = moved_together(mine, control, why_not)
    return result


def cell_label(key: tuple) -> str:
    """A readable name for a join key: model · backend · export · batch and dims · precision."""
    model, backend, exporter, opset, batch, dims, precision, mode = key
    export = f"{exporter} op{opset}" if opset is not None else (exporter or "eager")
    extra = f" {mode}" if mode != "latency" else ""
    sizes = "".join(f" {name}={size}" for name, size in dims)
    return f"{model} · {backend} · {export} · b{batch}{sizes} · {precision}{extra}"
