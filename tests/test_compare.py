"""compare: joins, statistics, parity drift, comparability, environment, the CI gate."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.comparison import Run, compare, verdict
from bench.gate import regressions
from bench.results import read_json, read_records
from bench.stats import ratio_test

DATA = Path(__file__).parent / "data"


def _run(name: str) -> Run:
    config = read_json(DATA / name / "run.json")["config"]
    return Run(name, read_records(DATA / name), read_json(DATA / name / "env.json"), config)


def _trials(medians) -> dict:
    return {
        "center_us": float(np.exp(np.mean(np.log(medians)))),
        "trials": [
            {"index": i, "median_us": float(m), "used": True} for i, m in enumerate(medians)
        ],
    }


def _synthetic(
    name: str,
    medians: dict[str, np.ndarray],
    passed: bool = True,
    sha: str = "a",
    control: np.ndarray | None = None,
) -> Run:
    records = []
    for backend, values in medians.items():
        records.append({
            "schema_version": 3, "kind": "cell", "model": "m", "backend": backend,
            "exporter": "auto", "opset_requested": 17, "opset_actual": 17, "batch_size": 1,
            "precision": "fp32", "mode": "latency", "status": "ok" if passed else "parity_failed",
            "export": {"sha256": sha}, "latency": {"inference": _trials(values)},
            "parity": {"passed": passed, "outputs": [{"max_abs_err": 1e-6 if passed else 0.5}]},
        })  # fmt: skip
    if control is not None:
        records.append({"kind": "control", "status": "ok", "model": "control",
                        "backend": "control", "latency": {"inference": _trials(control)}})  # fmt: skip
    return Run(name, records, {"cpu_model": name, "versions": {"onnxruntime": "1.32.0"}})


def test_welch_on_log_trial_medians_matches_scipy() -> None:
    from scipy import stats

    a, b = [100, 104, 98, 101, 103], [111, 108, 115, 109, 112]
    test = ratio_test(a, b)
    reference = stats.ttest_ind(np.log(b), np.log(a), equal_var=False)
    assert test.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert test.df == pytest.approx(reference.df)
    assert test.low < test.ratio < test.high and test.low > 1
    assert verdict(test) == "slower"


def test_same_distribution_is_unchanged_and_shift_is_slower() -> None:
    rng = np.random.default_rng(0)
    base = _synthetic(
        "base", {"same": rng.lognormal(3, 0.01, 8), "shift": rng.lognormal(3, 0.01, 8)}
    )
    other = _synthetic(
        "new", {"same": rng.lognormal(3, 0.01, 8), "shift": 1.2 * rng.lognormal(3, 0.01, 8)}
    )
    result = {c.key[1]: c for c in compare([base, other]).cells}
    assert result["same"].verdict == "unchanged"
    assert result["shift"].verdict == "slower"
    assert result["shift"].ratio == pytest.approx(1.2, rel=0.02)
    assert result["shift"].ratio_low > 1
    assert regressions(compare([base, other]), 10) and not regressions(compare([base, other]), 30)


def test_noisy_trials_cannot_resolve_a_small_change() -> None:
    rng = np.random.default_rng(3)
    base = _synthetic("base", {"noisy": rng.lognormal(3, 0.15, 5)})
    other = _synthetic("new", {"noisy": 1.04 * rng.lognormal(3, 0.15, 5)})
    (cell,) = compare([base, other]).cells
    assert cell.verdict == "cannot resolve" and cell.mde > 0.05
    assert not regressions(compare([base, other]), 1)


def test_a_machine_slowdown_is_removed_by_the_control_and_reported() -> None:
    rng = np.random.default_rng(4)
    cells = {f"b{i}": rng.lognormal(3, 0.01, 6) for i in range(5)}
    base = _synthetic("base", cells, control=rng.lognormal(4, 0.01, 6))
    slow = {k: 1.3 * v * rng.lognormal(0, 0.01, 6) for k, v in cells.items()}
    other = _synthetic("slow", slow, control=1.3 * rng.lognormal(4, 0.01, 6))
    raw = compare([base, other], normalize="none")
    assert all(c.verdict == "slower" for c in raw.cells)
    relative = compare([base, other])
    assert relative.basis["slow"] == "control"
    assert all(c.verdict in ("unchanged", "cannot resolve") for c in relative.cells)
    assert all(c.ratio_vs_control == pytest.approx(1.0, abs=0.03) for c in relative.cells)
    assert "control workload ran 1.30x" in relative.moved_together["slow"]
    assert "moved slower together" in relative.moved_together["slow"]
    assert not regressions(relative, 5) and regressions(raw, 5)


def test_auto_shows_vs_control_when_both_runs_have_a_control_and_says_it_judged_raw() -> None:
    """Under the default --normalize auto, the "vs control" column once stayed empty whenever
    the control had not moved; and "the whole run moved" was said whatever the control did."""
    from bench.report.compare_report import markdown_comparison, terminal_comparison

    rng = np.random.default_rng(5)
    cells = {f"b{i}": rng.lognormal(3, 0.01, 6) for i in range(5)}
    control = rng.lognormal(4, 0.01, 6)
    base = _synthetic("base", cells, control=control)
    slow = {k: 1.2 * v * rng.lognormal(0, 0.01, 6) for k, v in cells.items()}
    other = _synthetic("new", slow, control=control * rng.lognormal(0, 0.01, 6))
    result = compare([base, other])
    assert result.basis["new"] == "raw"
    assert all(c.verdict == "slower" and c.basis == "raw" for c in result.cells)
    assert all(c.ratio_vs_control == pytest.approx(1.2, rel=0.05) for c in result.cells)
    said = result.moved_together["new"]
    assert "100% of cells moved slower together" in said and "the control did not move" in said
    assert said.endswith("the code or the runtimes, not the machine")
    text = terminal_comparison(result)
    assert "verdicts use raw ratios: the control workload ran" in text
    assert "'vs control' is shown, not judged" in text
    assert "whole run moved" not in text
    row = next(line for line in markdown_comparison(result).splitlines() if "· b0 ·" in line)
    assert f"{result.cells[0].ratio_vs_control:.3f}" in row
    none = compare([base, other], normalize="none")
    assert all(c.ratio_vs_control is None for c in none.cells)
    assert "verdicts use raw ratios (--normalize none)" in terminal_comparison(none)


def test_cells_slower_beside_a_faster_control_is_not_called_the_machine() -> None:
    rng = np.random.default_rng(6)
    cells = {f"b{i}": rng.lognormal(3, 0.01, 6) for i in range(5)}
    base = _synthetic("base", cells, control=rng.lognormal(4, 0.01, 6))
    slow = {k: 1.3 * v * rng.lognormal(0, 0.01, 6) for k, v in cells.items()}
    other = _synthetic("new", slow, control=0.7 * rng.lognormal(4, 0.01, 6))
    result = compare([base, other])
    said = result.moved_together["new"]
    assert "cells moved slower together" in said and "the control moved the other way" in said
    assert "the machine itself was faster" in said and said.endswith("not the machine")
    assert result.basis["new"] == "control"
    assert all(c.verdict == "slower" and c.ratio_vs_control > 1.5 for c in result.cells)
    alone = _synthetic("same", cells, control=0.7 * rng.lognormal(4, 0.01, 6))
    said = compare([base, alone]).moved_together["same"]
    assert "the machine itself was faster" in said and "cells did not move together" in said


def test_parity_drift_and_not_comparable_and_env_are_reported() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(3, 0.1, 5)
    base = _synthetic("base", {"ort": values})
    broken = _synthetic("broken", {"ort": values}, passed=False, sha="b")
    result = compare([base, broken])
    (cell,) = result.cells
    assert cell.parity_drift == "parity pass -> FAIL"
    assert not cell.comparable and "sha256" in cell.not_comparable_reason
    assert ("cpu_model", "base", "broken") in result.env_differences["broken"]
    assert any("parity pass -> FAIL" in r for r in regressions(result, 1000))


def test_checked_in_runs_verdicts_match_their_samples() -> None:
    result = compare([_run("run_default_threads"), _run("run_one_thread")])
    assert len(result.cells) == 6 and all(c.comparable for c in result.cells)
    for cell in result.cells:  # schema 2: one loop per cell, no spread between trials
        assert cell.verdict == "cannot resolve" and cell.p_value is None
    assert set(b for _, b in result.geomeans) == {"ort-cpu", "openvino", "torch"}
    assert ("config.threads", None, 1) in result.env_differences["run_one_thread"]


def _slowed_copy(folder: Path, backend: str, factor: float) -> Path:
    """A copy of a checked-in run in which one backend's samples take `factor` times longer."""
    import json
    import shutil

    shutil.copytree(DATA / "v3_default_threads", folder)
    lines = []
    for line in (folder / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        timed = (record.get("latency") or {}).get("inference")
        if record["backend"] == backend and timed:
            timed["samples_us"] = [v * factor for v in timed["samples_us"]]
            for trial in timed["trials"]:
                trial["median_us"] *= factor
            timed["center_us"] *= factor
        lines.append(json.dumps(record))
    (folder / "results.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_compare_cli_gate(tmp_path, bench_env) -> None:
    slowed = _slowed_copy(tmp_path / "slowed", "ort-cpu", 3.0)
    args = [sys.executable, "-m", "bench", "compare", str(DATA / "v3_default_threads"),
            str(slowed), "--out", str(tmp_path / "cmp"), "--normalize", "none"]  # fmt: skip
    strict = subprocess.run(
        [*args, "--fail-on-regression", "10"], capture_output=True, text=True, env=bench_env
    )
    assert strict.returncode == 1
    assert "regression gate FAILED" in strict.stderr and "ort-cpu" in strict.stderr
    lenient = subprocess.run(
        [*args, "--fail-on-regression", "1000"], capture_output=True, text=True, env=bench_env
    )
    assert lenient.returncode == 0 and "regression gate passed (" in lenient.stdout
    assert re.search(r"gate passed \(\d+ of \d+ cells judged; a cell that cannot resolve never "
                     r"fails it; family-wise error 1% over the \d+ cells tested\)",
                     lenient.stdout)  # fmt: skip
    assert "family-wise error of 1%" in (tmp_path / "cmp" / "compare.md").read_text()
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert "<h2>Regression gate</h2><p>A cell fails when it is more than 1000% slower" in html
    assert (tmp_path / "cmp" / "compare.md").read_text().startswith("# bench compare")
    assert "Plotly.newPlot" in (tmp_path / "cmp" / "compare.html").read_text()


def test_compare_reads_an_older_schema_next_to_a_newer_one() -> None:
    result = compare([_run("run_default_threads"), _run("run_schema_v1")])
    assert len(result.cells) == 6
    assert any(name == "bench_commit" for name, _, _ in result.env_differences["run_schema_v1"])


def test_compare_report_names_cells_like_every_other_report() -> None:
    from bench.report.compare_report import key_label, markdown_comparison
    from bench.report.format import cell_label

    result = compare([_run("run_default_threads"), _run("run_one_thread")])
    assert "| simple_cnn · ort-cpu · auto op17 · b1 · fp32 |" in markdown_comparison(result)
    # the join key holds the requested exporter and opset: the one label function shows those
    ort = next(c for c in result.cells if c.key[1] == "ort-cpu")
    assert key_label(ort.key) == cell_label(
        {"model": "simple_cnn", "backend": "ort-cpu", "exporter": "auto", "opset_requested": 17,
         "batch_size": ort.key[4], "precision": "fp32"}
    )  # fmt: skip


def test_newer_schema_run_is_refused_by_compare(tmp_path, bench_env) -> None:
    newer = tmp_path / "newer"
    newer.mkdir()
    for name in ("results.jsonl", "env.json"):
        text = (DATA / "run_one_thread" / name).read_text()
        (newer / name).write_text(text.replace('"schema_version": 2', '"schema_version": 99'))
    proc = subprocess.run([sys.executable, "-m", "bench", "compare", str(DATA / "run_one_thread"), str(newer)],
                          capture_output=True, text=True, env=bench_env)  # fmt: skip
    assert proc.returncode == 2
    assert "schema_version 99; this bench reads versions up to 5: upgrade bench" in proc.stderr


def test_env_differences_name_the_allocator_policy() -> None:
    from bench.comparison import env_differences

    steady, system, old = {"allocator": "steady"}, {"allocator": "system"}, {"threads": None}
    assert ("config.allocator", "system", "steady") in env_differences({}, {}, system, steady)
    assert ("config.allocator", "system", "steady") in env_differences({}, {}, old, steady)
    assert not [d for d in env_differences({}, {}, old, system) if d[0] == "config.allocator"]


def test_a_control_too_noisy_to_resolve_its_move_is_not_called_still() -> None:
    """Seen in an A/A pair: every cell moved 1.07x together and the control 1.08x, a change
    too small for its spread; compare once said "the control did not move ... the code or the
    runtimes, not the machine", blaming the code for what was (likely) the machine."""
    rng = np.random.default_rng(6)
    cells = {f"b{i}": rng.lognormal(3, 0.01, 16) for i in range(5)}
    control = rng.lognormal(4, 0.2, 16)
    base = _synthetic("base", cells, control=control)
    moved = {k: 1.07 * v for k, v in cells.items()}
    other = _synthetic("new", moved, control=1.08 * control[rng.permutation(16)])
    result = compare([base, other])
    assert result.control["new"] is not None and verdict(result.control["new"]) == "cannot resolve"
    said = result.moved_together["new"]
    assert "100% of cells moved slower together" in said
    assert "a change it cannot resolve (detectable:" in said
    assert "not the machine" not in said and "did not move" not in said


def test_cells_in_one_run_only_are_named_on_the_terminal() -> None:
    """A cell the other run lacks is never compared; the terminal says so, not only compare.md."""
    from bench.report.compare_report import terminal_comparison

    values = np.random.default_rng(2).lognormal(3, 0.05, 8)
    base = _synthetic("base", {"ort": values, "ov": values, "a": values, "b": values, "c": values})
    new = _synthetic("new", {"ort": values, "trt": values})
    text = terminal_comparison(compare([base, new]))
    assert re.search(
        r"only in base \(not compared\): 4 cells: m · ov · .*, m · a · .*, m · b · .* and 1 more",
        text,
    ), text
    assert re.search(r"only in new \(not compared\): 1 cell: m · trt · auto op17", text), text


def test_an_unreadable_environment_is_unknown_not_different() -> None:
    from bench.comparison import env_differences

    env = {"host": "vm", "cpu_model": "EPYC", "versions": {"onnxruntime": "1.32.0"}}
    assert env_differences(env, {}) == [] and env_differences({}, env) == []
    config = {"threads": None}
    assert env_differences(env, {}, config, {"threads": 1}) == [("config.threads", None, 1)]
    from bench.report.compare_report import markdown_comparison

    values = np.random.default_rng(3).lognormal(3, 0.05, 8)
    blind = _synthetic("blind", {"ort": values})
    blind.env.clear()
    text = markdown_comparison(compare([_synthetic("base", {"ort": values}), blind]), None)
    assert "Not known: the environment of blind could not be read (env.json)" in text


def test_unbounded_intervals_are_shown_as_such() -> None:
    """Three noisy trials a side: an interval of 0.000-6270991.833 says nothing a reader can
    use; the table shows its bounds as unbounded."""
    from bench.report.compare_report import comparison_rows

    base = _synthetic("base", {"ort": np.array([10.0, 1000.0, 30.0])})
    new = _synthetic("new", {"ort": np.array([900.0, 12.0, 2000.0])})
    (row,) = comparison_rows(compare([base, new]))
    assert row[6] == "<0.001–>1000" and row[8] == ">1000%" and row[9] == "cannot resolve", row


def test_a_gate_that_judged_nothing_says_so(tmp_path, bench_env) -> None:
    """Single-loop runs (schema 2): no cell can be judged; the gate passes, and says it
    looked at nothing, on stderr, instead of a quiet pass line."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "compare", str(DATA / "run_default_threads"),
         str(DATA / "run_one_thread"), "--out", str(tmp_path / "c"), "--fail-on-regression", "5"],
        capture_output=True, text=True, env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert ("regression gate passed without testing any of 6 cells: none has two trials in "
            "both runs") in proc.stderr  # fmt: skip


def test_trials_without_a_usable_median_are_left_out_and_named() -> None:
    values = np.array([100.0, 101.0, 99.0, 100.5])
    base = _synthetic("base", {"x": values})
    other = _synthetic("new", {"x": values})
    trials = other.records[0]["latency"]["inference"]["trials"]
    for trial, bad in zip(trials, ["x", -1.0, 0, True], strict=True):
        trial["median_us"] = bad
    trials += [{"index": 4, "median_us": 100.2, "used": True}, "garbage",
               {"index": 6, "median_us": 99.8, "used": True}]  # fmt: skip
    result = compare([base, other])
    (cell,) = result.cells
    assert cell.ratio == pytest.approx(1.0, abs=0.01) and cell.verdict != "slower"
    (line,) = result.caveats
    assert line.startswith("new: 1 record(s) with trials that cannot be used (5 trial(s) left out")


def test_huge_trial_medians_are_unbounded_never_a_traceback_or_a_verdict() -> None:
    from bench.report.compare_report import terminal_comparison
    from bench.stats import ratio_test

    base = _synthetic("base", {"x": np.array([100.0, 101.0, 99.0, 100.5])})
    other = _synthetic("new", {"x": np.array([100.0, 1e308, 99.0, 100.5])})
    result = compare([base, other])
    (cell,) = result.cells
    assert cell.verdict == "cannot resolve" and not regressions(result, 5)
    assert ">1000" in terminal_comparison(result) and "e+" not in terminal_comparison(result)
    test = ratio_test([1.0, 1e-300], [1e300, 1.0])  # an interval beyond the float range
    assert test is not None and test.p_value > 0.01 and test.high == float("inf")
