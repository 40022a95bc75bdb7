"""scripts/fidelity.py: structure of its output, its statistics, and how it fails."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fidelity.py"


def _module():
    spec = importlib.util.spec_from_file_location("fidelity_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_ort_cpu_run_has_paired_ratios_intervals_and_clean_processes(tmp_path) -> None:
    out = tmp_path / "fidelity.json"
    proc = _script(
        "--backends", "ort-cpu", "--rounds", "2", "--seconds", "0.2", "--batch-sizes", "1",
        "--warmup-iters", "10", "--warmup-time", "0.05", "--min-iters", "10", "--json", str(out),
        "--bursts", "0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert "ort-cpu  batch 1  vs bare run_with_iobinding loop" in text
    assert "t-interval on the log ratios" in text
    ratio_line = next(
        line for line in text.splitlines() if line.strip().startswith("ratio  geomean")
    )
    assert "geomean" in ratio_line and "95% CI [" in ratio_line and "target <= 1.05" in ratio_line
    assert ("PASS" in ratio_line) != ("FAIL" in ratio_line)
    assert any(
        line.strip().startswith("A/A    geomean") and "95% CI [" in line
        for line in text.splitlines()
    )
    assert "torch loaded in none" in text

    report = json.loads(out.read_text())
    (result,) = report["results"]
    assert (result["backend"], result["batch"], result["target"]) == ("ort-cpu", 1, 1.05)
    for summary in (result["ratio"], result["aa"]):
        assert summary["n"] == 2
        assert 0 < summary["ci_low"] <= summary["geomean"] <= summary["ci_high"]
        assert summary["min"] <= summary["geomean"] <= summary["max"]
    rounds = result["rounds"]
    assert [r["order"] for r in rounds] == [
        ["bench", "reference", "bench A/A"],
        ["bench A/A", "reference", "bench"],
    ]  # ABBA
    pids = set()
    for row in rounds:
        assert row["ratio"] == pytest.approx(row["bench_us"] / row["reference_us"])
        processes = row["processes"]
        assert {p["side"] for p in processes.values()} == {"bench", "bare-ort"}
        for side in processes.values():
            assert side["loaded"]["torch"] is False
            assert side["loaded"]["openvino"] is False
            assert side["samples"] >= 10
            pids.add(side["pid"])
        assert processes["reference"]["loaded"]["bench"] is False
        assert processes["bench"]["policy"]["min_time"] == 0.2
    assert len(pids) == 6  # a fresh process per measurement


def test_missing_benchmark_app_skips_openvino_with_the_reason(tmp_path) -> None:
    out = tmp_path / "f.json"
    proc = _script("--backends", "openvino", "--benchmark-app", str(tmp_path / "nope"),
                   "--json", str(out), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "openvino: skipped:" in proc.stdout and "is not executable" in proc.stdout
    report = json.loads(out.read_text())
    assert report["results"] == [] and "openvino" in report["skipped"]


def test_failed_process_gives_stderr_tail_and_one_line_reason(capsys) -> None:
    fidelity = _module()
    cmd = [sys.executable, "-c", "import sys; print('detail', file=sys.stderr); sys.exit('boom')"]
    with pytest.raises(fidelity.Failure) as info:
        fidelity._run_json(cmd, "bench side (ort-cpu, batch 1, round 1)", timeout=60)
    assert str(info.value) == "bench side (ort-cpu, batch 1, round 1) failed (exit 1): boom"
    assert "detail" in capsys.readouterr().err


def test_side_process_fails_on_a_missing_model(tmp_path) -> None:
    proc = _script("--side", "bare-ort", "--onnx", str(tmp_path / "none.onnx"), timeout=120)
    assert proc.returncode != 0 and proc.stdout.strip() == ""


def test_bad_rounds_are_refused() -> None:
    proc = _script("--rounds", "1", timeout=60)
    assert proc.returncode == 2 and "--rounds must be >= 2" in proc.stderr


def test_ratio_summary_is_a_t_interval_on_the_log_ratios() -> None:
    fidelity = _module()
    ratios = [1.0, 1.1, 1.21]
    summary = fidelity.ratio_summary(ratios)
    logs = [math.log(r) for r in ratios]
    mean = sum(logs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2)
    half = 4.302653 * sd / math.sqrt(3)  # t(0.975, 2 df)
    assert summary["geomean"] == pytest.approx(1.1)
    assert summary["ci_low"] == pytest.approx(math.exp(mean - half), rel=1e-4)
    assert summary["ci_high"] == pytest.approx(math.exp(mean + half), rel=1e-4)
    assert (summary["min"], summary["max"]) == (1.0, 1.21)


def test_t_quantile_without_scipy_matches_scipy(monkeypatch) -> None:
    stats = pytest.importorskip("scipy.stats")
    fidelity = _module()
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # import fails: the fallback
    for df in [*range(1, 60), 100, 1000]:
        value, source = fidelity.t_quantile_975(df)
        assert "scipy not installed" in source
        assert value == pytest.approx(stats.t.ppf(0.975, df), abs=1e-4)


@pytest.mark.slow
def test_ort_cpu_burst_rounds_load_every_side_at_once_and_take_turns(tmp_path) -> None:
    out = tmp_path / "fidelity.json"
    proc = _script(
        "--backends", "ort-cpu", "--rounds", "2", "--seconds", "0.3", "--batch-sizes", "1",
        "--warmup-iters", "10", "--warmup-time", "0.02", "--bursts", "3", "--json", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "taking 3 turns each (rotating order)" in proc.stdout
    report = json.loads(out.read_text())
    assert report["method"]["bursts"]["ort-cpu"] == 3
    (result,) = report["results"]
    assert [r["order"] for r in result["rounds"]] == [
        ["bench x3", "reference x3", "bench2 x3"],
        ["bench2 x3", "reference x3", "bench x3"],
    ]
    pids = set()
    for row in result["rounds"]:
        assert row["ratio"] == pytest.approx(row["bench_us"] / row["reference_us"])
        for side in row["processes"].values():
            assert side["samples"] >= 3  # at least one timed call per turn
            assert side["loaded"]["torch"] is False
            pids.add(side["pid"])
        assert row["processes"]["reference"]["warmup_iters"] >= 10  # the first warm-up
    assert len(pids) == 6


def test_a_side_that_dies_between_turns_fails_the_round_in_one_line(capsys) -> None:
    fidelity = _module()
    alive = [sys.executable, "-c", "import json, sys\nprint(json.dumps({'ready': 1}), flush=True)\n"
             "for line in sys.stdin:\n    print(json.dumps({'burst': 1}), flush=True)"]  # fmt: skip
    dies = [sys.executable, "-c", "import json, sys\nprint(json.dumps({'ready': 2}), flush=True)\n"
            "sys.stdin.readline(); sys.exit('lost its session')"]  # fmt: skip
    with pytest.raises(fidelity.Failure) as info:
        fidelity._burst_round({"a": alive, "b": dies}, ["a", "b"], 3, "round (x)", timeout=60)
    assert str(info.value) == "round (x) b failed (exit 1): lost its session"
    assert "lost its session" in capsys.readouterr().err


def test_bad_bursts_are_refused() -> None:
    proc = _script("--bursts", "-1", timeout=60)
    assert proc.returncode == 2 and "--bursts must be 0 to 1000" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seconds", "nan"], "--seconds must be 0.001 to 3600, got nan"),
        (["--warmup-time", "inf"], "--warmup-time must be 0 to 3600, got inf"),
        (["--threads", "100000"], "--threads must be 1 to"),
        (["--min-iters", "0"], "--min-iters must be 1 to"),
        (["--json", "/nonexistent/folder/x.json"], "--json: cannot write /nonexistent/folder"),
        (["--json", "/tmp"], "--json: cannot write /tmp (Is a directory)"),
    ],
)
def test_bad_values_are_refused_before_anything_runs(args: list[str], message: str) -> None:
    proc = _script(*args, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
