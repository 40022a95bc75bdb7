"""compare: joins, statistics, parity drift, comparability, environment, the CI gate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.compare import Run, compare, mann_whitney_p, regressions
from bench.results import read_json, read_records

DATA = Path(__file__).parent / "data"


def _run(name: str) -> Run:
    config = read_json(DATA / name / "run.json")["config"]
    return Run(name, read_records(DATA / name), read_json(DATA / name / "env.json"), config)


def _synthetic(
    name: str, samples: dict[str, np.ndarray], passed: bool = True, sha: str = "a"
) -> Run:
    records = []
    for backend, values in samples.items():
        records.append({
            "schema_version": 2, "model": "m", "backend": backend, "exporter": "auto",
            "opset_requested": 17, "opset_actual": 17, "batch_size": 1, "precision": "fp32",
            "mode": "latency", "status": "ok" if passed else "parity_failed",
            "export": {"sha256": sha},
            "latency": {"inference": {"samples_us": [float(v) for v in values]}},
            "parity": {"passed": passed, "outputs": [{"max_abs_err": 1e-6 if passed else 0.5}]},
        })  # fmt: skip
    return Run(name, records, {"cpu_model": name, "versions": {"onnxruntime": "1.32.0"}})


def test_mann_whitney_known_value() -> None:
    # scipy.stats.mannwhitneyu([1,2,3], [4,5,6], method="asymptotic") gives p = 0.0809
    assert mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.0809, abs=1e-4)
    assert mann_whitney_p([5.0] * 50, [5.0] * 50) == 1.0


def test_same_distribution_is_not_significant_and_shift_is_slower() -> None:
    rng = np.random.default_rng(0)
    base = _synthetic(
        "base", {"same": rng.lognormal(3, 0.1, 3000), "shift": rng.lognormal(3, 0.1, 3000)}
    )
    other = _synthetic(
        "new", {"same": rng.lognormal(3, 0.1, 3000), "shift": 1.2 * rng.lognormal(3, 0.1, 3000)}
    )
    result = {c.key[1]: c for c in compare([base, other]).cells}
    assert result["same"].verdict == "not significant"
    assert result["shift"].verdict == "slower"
    assert result["shift"].ratio == pytest.approx(1.2, rel=0.02)
    assert result["shift"].ratio_low > 1
    assert regressions(compare([base, other]), 10) and not regressions(compare([base, other]), 30)


def test_parity_drift_and_not_comparable_and_env_are_reported() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(3, 0.1, 500)
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
    for cell in result.cells:
        if cell.verdict == "slower":
            assert cell.other_median_us > cell.base_median_us and cell.p_value < 0.01
        if cell.verdict == "faster":
            assert cell.other_median_us < cell.base_median_us and cell.p_value < 0.01
    assert set(b for _, b in result.geomeans) == {"ort-cpu", "openvino", "torch"}
    assert ("config.threads", None, 1) in result.env_differences["run_one_thread"]


def test_compare_cli_gate(tmp_path, bench_env) -> None:
    args = [sys.executable, "-m", "bench", "compare", str(DATA / "run_default_threads"),
            str(DATA / "run_one_thread"), "--out", str(tmp_path)]  # fmt: skip
    strict = subprocess.run(
        [*args, "--fail-on-regression", "10"], capture_output=True, text=True, env=bench_env
    )
    assert strict.returncode == 1
    assert "regression gate FAILED" in strict.stderr and "torch" in strict.stderr
    lenient = subprocess.run(
        [*args, "--fail-on-regression", "1000"], capture_output=True, text=True, env=bench_env
    )
    assert lenient.returncode == 0 and "regression gate passed" in lenient.stdout
    assert (tmp_path / "compare.md").read_text().startswith("# bench compare")
    assert "Plotly.newPlot" in (tmp_path / "compare.html").read_text()


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
        (newer / name).write_text(text.replace('"schema_version": 2', '"schema_version": 3'))
    proc = subprocess.run([sys.executable, "-m", "bench", "compare", str(DATA / "run_one_thread"), str(newer)],
                          capture_output=True, text=True, env=bench_env)  # fmt: skip
    assert proc.returncode == 2
    assert "schema_version 3; this bench reads versions up to 2: upgrade bench" in proc.stderr
