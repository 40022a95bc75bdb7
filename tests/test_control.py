"""The control workload: a multithreaded matmul on the workers' cores, measured in more and
shorter trials; old runs keep theirs, and compare divides only by the same workload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST_TIMING

from bench.comparison import Run, compare
from bench.config import RunConfig
from bench.control import CONTROL_SHARE, LEGACY, MATMUL, control_id, same_workload
from bench.report.compare_report import basis_lines
from bench.schedule import trial_policy
from bench.timing import TimingPolicy


def test_the_matmul_control_uses_every_core_it_may_and_says_so() -> None:
    """In a process pinned to one core the control runs one BLAS thread; unpinned, all."""
    code = (
        "import os, sys, json\n"
        "if sys.argv[1] == '1': os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "from bench.controlworkload import MatmulControl\n"
        "from bench.backends.base import LoadSpec\n"
        "c = MatmulControl(); c.load(LoadSpec(source='')); c.run()\n"
        "print(json.dumps({**c.describe(), 'cores': len(os.sched_getaffinity(0))}))\n"
        "c.close()\n"
    )
    for pinned in ("1", "0"):
        out = subprocess.run([sys.executable, "-c", code, pinned], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        found = json.loads(out.splitlines()[-1])
        assert found["threads"] == str(found["cores"]), found
        assert found["workload"] == "float32 matmul 384x384"
        assert f"({found['cores']} threads)" in found["blas"], found


def test_the_controls_idle_blas_threads_do_not_spin_into_the_next_trial() -> None:
    """Workers start with OpenBLAS's spin timeout at its minimum: after the control's calls,
    its threads take (almost) no CPU while the next trial runs in another worker. With
    OpenBLAS's default they spun about 0.1 s of CPU, and 83% of the trials that followed a
    control trial were contended and retried."""
    from bench.control import BLAS_TIMEOUT_ENV, QUIET_BLAS_TIMEOUT

    code = (
        "import time\n"
        "from bench.controlworkload import MatmulControl\n"
        "from bench.backends.base import LoadSpec\n"
        "c = MatmulControl(); c.load(LoadSpec(source=''))\n"
        "for _ in range(20): c.run()\n"
        "start = time.process_time(); time.sleep(0.2)\n"
        "print(time.process_time() - start)\n"
    )
    env = {**os.environ, BLAS_TIMEOUT_ENV: QUIET_BLAS_TIMEOUT}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout  # fmt: skip
    assert float(out.splitlines()[-1]) < 0.03


def test_a_shared_trial_takes_its_share_of_the_time() -> None:
    policy = TimingPolicy(min_time=0.05, warmup_time=0.04, min_iters=10)
    assert trial_policy(policy, 1) is policy
    short = trial_policy(policy, 4)
    assert (short.min_time, short.warmup_time, short.min_iters) == (0.0125, 0.01, 10)


def test_old_runs_resume_with_the_control_they_measured() -> None:
    record = RunConfig().to_record()
    assert record["control_workload"] == MATMUL
    del record["control_workload"]
    assert RunConfig.from_record(record).control_workload == LEGACY
    assert control_id(None, LEGACY) == "control/control/numpy+python"
    assert control_id("gpu=a", MATMUL) == "control/control/matmul/on-gpu=a"


def _control(workload: str, threads: str, scale: float = 1.0) -> dict:
    rng = np.random.default_rng(1)
    medians = scale * rng.lognormal(5, 0.02, 16)
    return {"kind": "control", "status": "ok", "model": "control", "backend": "control",
            "settings": {"workload": workload, "threads": threads},
            "latency": {"inference": {"trials": [{"median_us": float(m)} for m in medians]}}}  # fmt: skip


def _cell(scale: float) -> dict:
    rng = np.random.default_rng(2)
    return {"kind": "cell", "model": "m", "backend": "b", "exporter": "auto",
            "opset_requested": 17, "opset_actual": 17, "batch_size": 1, "precision": "fp32",
            "mode": "latency", "status": "ok", "export": {"sha256": "a"},
            "latency": {"inference": {"trials": [
                {"median_us": float(m)} for m in scale * rng.lognormal(4, 0.02, 16)]}}}  # fmt: skip


def test_compare_divides_only_by_the_same_control_workload() -> None:
    base = Run("old", [_cell(1.0), _control("numpy multiply+add", "")], {})
    other = Run("new", [_cell(1.3), _control("float32 matmul 384x384", "2", 1.3)], {})
    assert same_workload(base.records[1], other.records[1]).startswith(
        "the control workloads differ (workload: numpy multiply+add vs float32 matmul"
    )
    result = compare([base, other])
    assert result.control["new"] is None and result.basis["new"] == "raw"
    assert any("verdicts use raw ratios (the control workloads differ" in line
               for line in basis_lines(result))  # fmt: skip
    assert result.cells[0].verdict == "slower"  # raw: not divided by an unlike control
    with pytest.raises(Exception, match=r"--normalize control: old against new: the control "
                       r"workloads differ"):  # fmt: skip
        compare([base, other], normalize="control")
    two_threads = Run("b", [_cell(1.3), _control("float32 matmul 384x384", "2", 1.3)], {})
    four_threads = Run("c", [_cell(1.3), _control("float32 matmul 384x384", "4")], {})
    assert "threads: 2 vs 4" in compare([two_threads, four_threads]).no_control["c"]
    same = compare([two_threads, Run("d", [_cell(1.3), _control("float32 matmul 384x384",
                                                                   "2", 1.3)], {})])  # fmt: skip
    assert same.control["d"] is not None and same.no_control["d"] == ""


def _bench(bench_env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True,
                          text=True, env=bench_env, timeout=600)  # fmt: skip


def test_a_run_measures_the_matmul_control_in_shorter_trials_and_an_old_run_keeps_its_own(
    tmp_path: Path, bench_env
) -> None:
    out = tmp_path / "run"
    grid = ["--models", "simple_cnn", "--backends", "ort-cpu", "--opsets", "18",
            "--batch-sizes", "1,2", "--no-baseline", *FAST_TIMING]  # fmt: skip
    proc = _bench(bench_env, "run", *grid, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    (control,) = [r for r in records if r["kind"] == "control"]
    assert control["cell_id"] == "control/control/matmul"
    assert control["settings"]["workload"] == "float32 matmul 384x384"
    assert control["settings"]["blas_thread_timeout"] == "4"  # set by bench for its workers
    trials = control["latency"]["inference"]["trials"]
    cell_trials = records[0]["latency"]["inference"]["n_trials"]
    assert len([t for t in trials if t.get("used", True)]) == CONTROL_SHARE * cell_trials

    # The same folder as a run from before the matmul control: its config names none, its
    # control record and one cell are gone (killed before writing them).
    config_file = out / "run.json"
    saved = json.loads(config_file.read_text())
    del saved["config"]["control_workload"]
    config_file.write_text(json.dumps(saved))
    (out / "results.jsonl").write_text(json.dumps(records[0]) + "\n")
    proc = _bench(bench_env, "run", "--resume", str(out))
    assert proc.returncode == 0, proc.stderr
    resumed = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    controls = [r for r in resumed if r["kind"] == "control"]
    assert [c["cell_id"] for c in controls] == ["control/control/numpy+python"]
    assert controls[0]["latency"]["inference"]["n_trials"] == cell_trials


def test_what_compare_and_reports_say_when_the_control_is_missing_failed_or_crowded() -> None:
    """An independent tester's findings: which run lacks a control is named; a run of single
    trials says nothing was judged; a failed control is named as failed, not as "fewer than
    two trials"; a contended control says so; contended trials are not counted twice."""
    from bench.report import fields

    with_control = Run("old", [_cell(1.0), _control(MATMUL, "2")], {})
    without = Run("new", [_cell(1.3)], {})
    result = compare([with_control, without])
    assert result.no_control["new"] == "new has no measured control workload"
    with pytest.raises(Exception, match=r"has no measured control workload \(a run made with "
                       r"--no-control has none\)$"):  # fmt: skip
        compare([with_control, without], normalize="control")

    single = _cell(1.3)
    single["latency"]["inference"]["trials"] = single["latency"]["inference"]["trials"][:1]
    lines = basis_lines(compare([with_control, Run("one", [single, _control(MATMUL, "2")], {})]))
    assert lines == ["one: no verdicts: every cell has fewer than two trials on a side "
                     "(--trials 1), so no ratio was judged, raw or relative"]  # fmt: skip

    failed = {"kind": "control", "status": "failed", "reason": "trial 7: worker gave no result"}
    assert fields.control_lines([failed]) == ["control workload failed: trial 7: worker gave no "
                                              "result"]  # fmt: skip
    crowded = _control(MATMUL, "2")
    crowded["latency"]["inference"].update(center_us=1000.0, n_trials=64, contended_trials=41)
    crowded["latency"]["end_to_end"] = {"contended_trials": 41}
    (line,) = fields.control_lines([crowded])
    assert line.endswith("⚠ 41 of 64 trials contended (compare divides by this figure)")
    assert fields.contended_trials(crowded) == 41 and fields.contended(crowded)
