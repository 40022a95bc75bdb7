"""The CLI as a user runs it: `python -m bench ...` in a subprocess."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST_TIMING


def bench(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], capture_output=True, text=True, env=env, cwd=cwd,
        timeout=600,
    )  # fmt: skip


def _cells(out: Path) -> list[dict]:
    """The records of cells (not the control workload's) of a run folder."""
    lines = (out / "results.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "cell"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    import os

    from conftest import ROOT

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *sys.path])
    out = tmp_path_factory.mktemp("sweep") / "run"
    proc = bench(
        "run", "--models", "simple_cnn", "--backends", "ort-cpu,ort-cuda,openvino,torch",
        "--opsets", "13,18", "--batch-sizes", "1,3", "--out", str(out), *FAST_TIMING, env=env,
    )  # fmt: skip
    return proc, out


def test_sweep_exits_zero_and_writes_the_four_files(sweep) -> None:
    proc, out = sweep
    assert proc.returncode == 0, proc.stderr
    for name in ("results.jsonl", "summary.csv", "report.md", "env.json"):
        assert (out / name).is_file(), name
    assert f"run folder: {out}" in proc.stdout


def test_every_cell_has_a_record_and_ort_cuda_is_skipped_with_reason(sweep) -> None:
    _, out = sweep
    records = _cells(out)
    # ort-cpu, ort-cuda, openvino: 2 opsets x 2 batches each; torch: 2 batches.
    assert len(records) == 3 * 4 + 2
    assert all(r["schema_version"] == 5 for r in records)
    by_backend: dict[str, list[dict]] = {}
    for r in records:
        by_backend.setdefault(r["backend"], []).append(r)
    for name in ("ort-cpu", "openvino", "torch"):
        for r in by_backend[name]:
            assert r["status"] == "ok", r.get("reason")
            assert r["parity"]["passed"]
            assert r["parity"]["outputs"][0]["argmax_agreement"] == 1.0
            timed = r["latency"]["inference"]
            assert timed["p50_us"] > 0 and timed["n_trials"] >= 2  # retries may add one
            assert timed["ci95_low_us"] <= timed["center_us"] <= timed["ci95_high_us"]
            assert len(timed["samples_us"]) == sum(t["n"] for t in timed["trials"])
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        for r in by_backend["ort-cuda"]:
            assert r["status"] == "skipped"
            assert "CUDAExecutionProvider" in r["reason"] and "install:" in r["reason"]


def test_records_carry_requested_and_actual_opset_and_exporter(sweep) -> None:
    _, out = sweep
    records = _cells(out)
    ort13 = next(r for r in records if r["backend"] == "ort-cpu" and r["opset_requested"] == 13)
    assert ort13["opset_actual"] == 13 and ort13["exporter_used"] == "torchscript"
    assert "wrote opset 18" in ort13["export"]["fallback_reason"]
    ort18 = next(r for r in records if r["backend"] == "ort-cpu" and r["opset_requested"] == 18)
    assert ort18["exporter_used"] == "dynamo" and ort18["opset_actual"] == 18
    ov = next(r for r in records if r["backend"] == "openvino")
    assert ov["settings"]["INFERENCE_PRECISION_HINT"] == "f32"
    # Parity runs at batch sizes other than the export's (2), on two seeds' batches.
    assert {r["batch_size"] for r in records} == {1, 3}


def test_summary_csv_and_report_md_hold_both_tables(sweep) -> None:
    _, out = sweep
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 14
    assert {"p50_us", "p99_us", "max_abs_err", "parity_passed", "speedup_vs_torch"} <= set(rows[0])
    report = (out / "report.md").read_text()
    assert (
        "## Latency" in report and "## Accuracy against the reference (torch eager fp32)" in report
    )
    assert "## Failures and skips" in report and "CUDAExecutionProvider" in report
    env = json.loads((out / "env.json").read_text())
    assert env["versions"]["torch"] and env["cpu_model"] and env["command"][:2] == ["bench", "run"]


def test_terminal_shows_progress_and_final_table(sweep) -> None:
    proc, _ = sweep
    assert "[1/15] loaded simple_cnn/ort-cpu/auto-op13/b1/fp32" in proc.stdout
    # 10 cells (ort-cuda skipped at load here) and the control's 4 shorter trials a round,
    # 2 rounds; the first line comes before any contended trial is retried.
    assert "trials 1-14 of 28" in proc.stdout
    assert proc.stdout.count("ort-cuda: skipped") == 1  # one line per backend and reason
    assert "model: simple_cnn" in proc.stdout and "median µs" in proc.stdout


def test_report_command_rebuilds_from_jsonl_and_env(sweep, bench_env, tmp_path) -> None:
    _, out = sweep
    import shutil

    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("results.jsonl", "env.json"):
        shutil.copy(out / name, copy / name)
    proc = bench("report", str(copy), env=bench_env)
    assert proc.returncode == 0, proc.stderr
    assert (copy / "report.md").read_text() == (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "resnet"], "unknown model 'resnet'"),
        (["--backends", "ort-gpu"], "unknown backend 'ort-gpu' (did you mean 'ort-cpu'?); valid:"),
        (["--batch-sizes", "0"], "--batch-sizes: 0 is out of range; valid: 1 to"),
        (["--batch-sizes", "1,x"], "--batch-sizes: 'x' is not a whole number"),
        (["--opsets", "40"], "opset 40 cannot be written with exporter 'auto'; valid:"),
        (["--precisions", "fp8"], "--precisions: unknown 'fp8'; valid: fp32, bf16"),
        (["--min-time", "5", "--max-time", "1"], "--max-time 1 is below --min-time 5"),
        (["--backend-option", "openvino"], "expected BACKEND.KEY=VALUE"),
        (["--out", "/proc/nope"], "--out: cannot write to /proc/nope"),
        (["--cpus", "99"], "--cpus: core 99 is not available; valid: 0"),
        (["--cpus", "0-100000000"], "--cpus: core 100000000 is not available; valid: 0"),
        (["--cpus", "1-0"], "--cpus: '1-0' is a reversed range; write 0-1"),
        (["--cpus", ""], "--cpus: an empty list; give cores like 0-1 or 0,2 (valid: 0"),
        (["--cpus", "a-b"], "--cpus: 'a-b' is not a core or a range like 0-1"),
        (["--trials", "0"], "--trials must be >= 1, got 0; valid: 1 to 1000"),
        (["--min-time", "nan"], "--min-time must be a finite number, got nan"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], message: str, bench_env, tmp_path) -> None:
    proc = bench("run", *args, env=bench_env, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()  # nothing started


def test_help_describes_every_flag(bench_env) -> None:
    proc = bench("run", "--help", env=bench_env)
    assert proc.returncode == 0
    for flag in ("--models", "--backends", "--exporter", "--opsets", "--batch-sizes", "--min-iters",
                 "--min-time", "--out", "--threads", "--backend-option"):  # fmt: skip
        assert flag in proc.stdout


def test_list_shows_models_and_backend_availability(bench_env) -> None:
    proc = bench("list", env=bench_env)
    assert proc.returncode == 0
    assert "simple_cnn" in proc.stdout
    assert "ort-cpu" in proc.stdout and "available" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("ort-cuda"))
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert "unavailable:" in line and "CUDAExecutionProvider" in line


def test_throughput_mode_end_to_end(bench_env, tmp_path) -> None:
    out = tmp_path / "tput"
    proc = bench(
        "run", "--backends", "ort-cpu,openvino", "--opsets", "18", "--batch-sizes", "2",
        "--mode", "throughput", "--out", str(out), *FAST_TIMING, env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = {r["backend"]: r for r in _cells(out)}
    assert records["openvino"]["settings"]["PERFORMANCE_HINT"] == "THROUGHPUT"
    for name in ("ort-cpu", "openvino", "torch"):
        tput = records[name]["throughput"]
        assert records[name]["mode"] == "throughput" and records[name]["parity"]["passed"]
        assert tput["requests"] >= 1 and tput["items_per_s_wall"] > 0
        assert tput["inferences_per_round"] == tput["requests"] * 4
        assert records[name]["settings"]["requests"] == str(tput["requests"])
    assert records["ort-cpu"]["throughput"]["requests"] == 2
    assert records["ort-cpu"]["latency"] is None


def test_threads_and_backend_options_are_applied_and_read_back(bench_env, tmp_path) -> None:
    out = tmp_path / "threads"
    proc = bench(
        "run", "--backends", "ort-cpu,openvino", "--opsets", "18", "--batch-sizes", "1",
        "--threads", "1", "--backend-option", "ort-cpu.graph_optimization_level=extended",
        "--backend-option", "openvino.shapes=dynamic", "--out", str(out), *FAST_TIMING,
        env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = {r["backend"]: r for r in _cells(out)}
    assert records["ort-cpu"]["settings"]["intra_op_num_threads"] == "1"
    assert records["ort-cpu"]["settings"]["graph_optimization_level"] == "ORT_ENABLE_EXTENDED"
    assert records["openvino"]["settings"]["INFERENCE_NUM_THREADS"] == "1"
    assert records["openvino"]["settings"]["shapes"] == "dynamic"
    assert records["torch"]["settings"]["threads"] == "1"
    for record in records.values():
        assert record["cold_start"]["load_s"] > 0 and record["cold_start"]["first_run_ms"] > 0
        assert record["memory"]["peak_rss_mb"] > 10
        assert record["latency"]["end_to_end"]["p50_us"] > 0


def test_config_file_sets_flags_and_tolerances(bench_env, tmp_path) -> None:
    config = tmp_path / "bench.toml"
    config.write_text(
        'backends = ["ort-cpu"]\nopsets = [17]\nbatch_sizes = [2]\nmin_time = 0.02\n'
        "max_time = 0.2\ntrials = 2\n[tolerances.simple_cnn]\nrtol = 0.01\natol = 0.001\n"
    )
    out = tmp_path / "cfg"
    proc = bench("run", "--config", str(config), "--atol", "simple_cnn=0.002", "--out", str(out),
                 env=bench_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = _cells(out)
    assert {r["backend"] for r in records} == {"ort-cpu", "torch"}
    assert all(r["batch_size"] == 2 for r in records)
    # the file's rtol, the command line's atol (flags win over the file)
    assert all(r["tolerance"] == {"rtol": 0.01, "atol": 0.002} for r in records)
    assert all(r["parity"]["rtol"] == 0.01 for r in records)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("backends = [ort-cpu", "does not parse"),
        ("colour = 'red'", "unknown setting 'colour'; valid:"),
        ("[tolerances.resnet]\nrtol = 1", "[tolerances.resnet]: model not in this run"),
    ],
)
def test_bad_config_file_is_one_line(text: str, message: str, bench_env, tmp_path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    proc = bench("run", "--config", str(config), env=bench_env, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--exporter", "onnx"],
            "invalid choice: 'onnx' (choose from",
        ),
        (["run", "--threads", "0"], "--threads must be >= 1, got 0; valid: 1 to"),
        (["run", "--cell-timeout", "-5"], "--cell-timeout must be > 0"),
        (["run", "--min-iters", "x"], "argument --min-iters: invalid int value: 'x'"),
        (["run", "--resume", "/nonexistent"], "--resume: /nonexistent is not a run folder"),
        (["run", "--retry-failed"], "--retry-failed goes with --resume RUN_DIR"),
        (["run", "--rtol", "simple_cnn=abc"], "'abc' is not a number"),
        (["run", "--backend-option", "tensorrt.x=1"], "backend 'tensorrt' is not in this run"),
        (
            [
                "run",
                "--backends",
                "ort-cpu",
                "--backend-option",
                "ort-cpu.graph_optimisation_level=disable",
            ],
            "unknown option 'graph_optimisation_level' (did you mean 'graph_optimization_level'?)",
        ),
        (
            ["run", "--backends", "ort-cpu", "--backend-option", "ort-cpu.intra_op_num_threads=2"],
            "intra_op_num_threads is set by --threads",
        ),
        (
            ["run", "--backends", "ort-cpu", "--backend-option", "ort-cpu.execution_mode=fast"],
            "execution_mode='fast'; valid: sequential, parallel",
        ),
        (
            ["run", "--backends", "openvino", "--backend-option", "openvino.num_streams=2"],
            "'num_streams' is an unknown option (did you mean 'NUM_STREAMS'?); valid: shapes, ",
        ),
        (
            ["run", "--backends", "openvino", "--backend-option", "openvino.FULL_DEVICE_NAME=x"],
            "'FULL_DEVICE_NAME' is a read-only property",
        ),
        (["compare", "only_one"], "compare needs at least two different run folders"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_more_bad_input_one_line(args: list[str], message: str, bench_env, tmp_path) -> None:
    proc = bench(*args, env=bench_env, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_broken_user_model_files_are_one_line(bench_env, tmp_path) -> None:
    (tmp_path / "imports.py").write_text("import nonexistent_dependency_xyz\n")
    (tmp_path / "raises.py").write_text("def make():\n    raise RuntimeError('no weights')\n")
    for ref, message in (
        (f"{tmp_path}/imports.py:make", "ModuleNotFoundError: No module named 'nonexistent_dep"),
        (
            f"{tmp_path}/raises.py:make",
            "raises.py:make: calling it raised RuntimeError: no weights",
        ),
    ):
        proc = bench("run", "--models", ref, env=bench_env, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    # Several at once: every problem in the one line, not only the first.
    refs = f"{tmp_path}/imports.py:make,simple_cnn,{tmp_path}/raises.py:make,simple_cn"
    proc = bench("run", "--models", refs, "--out", str(tmp_path / "r"), env=bench_env, cwd=tmp_path)
    line = proc.stderr.strip()
    assert proc.returncode == 2 and "\n" not in line, line
    assert "3 of 4 models cannot be used" in line and "nonexistent_dep" in line, line
    assert "no weights" in line and "unknown model 'simple_cn' (did you mean" in line, line
    assert not (tmp_path / "r").exists()


def test_bf16_cells_run_where_supported_and_say_where_not(bench_env, tmp_path) -> None:
    out = tmp_path / "bf16"
    proc = bench("run", "--backends", "ort-cpu,openvino", "--opsets", "18", "--batch-sizes", "2",
                 "--precisions", "fp32,bf16", "--out", str(out), *FAST_TIMING, env=bench_env)  # fmt: skip
    records = {
        (r["backend"], r["precision"]): r
        for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())
    }
    ort = records[("ort-cpu", "bf16")]
    assert ort["status"] == "skipped" and "supports precisions fp32" in ort["reason"]
    ov = records[("openvino", "bf16")]
    if ov["status"] == "ok":  # a CPU with bf16: computed in bf16, checked at bf16 tolerance
        assert ov["settings"]["precision"] == "bf16" and ov["tolerance"]["atol"] == 5e-2
        assert proc.returncode == 0, proc.stderr
    else:  # never silently f32 where bf16 was asked
        assert ov["status"] == "failed" and "compiled model uses f32" in ov["reason"]
    assert records[("openvino", "fp32")]["settings"]["precision"] == "f32"
    assert records[("torch", "bf16")]["settings"]["precision"] == "bfloat16"


def test_env_records_affinity_and_thread_settings(sweep) -> None:
    _, out = sweep
    threading = json.loads((out / "env.json").read_text())["threading"]
    assert threading["affinity"] and threading["worker_cpus"] is None
    assert isinstance(threading["thread_variables"], dict)


DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "(empty)"),
        (b"\n  \n\n", "(empty)"),
        (b'{"schema_version": 5, "st', "(only a torn line 1)"),
    ],
)
def test_an_empty_results_file_is_refused_by_every_reader(
    content: bytes, says: str, bench_env, tmp_path
) -> None:
    """report, compare, history add and bench.load once read an empty results.jsonl as a run
    of 0 cells; README's exit-code table says a folder with nothing readable is exit 2."""
    import shutil

    import bench as api

    run = tmp_path / "run"
    shutil.copytree(DATA / "run_one_thread", run)
    (run / "results.jsonl").write_bytes(content)
    before = sorted(p.name for p in run.iterdir())
    line = f"bench: error: {run / 'results.jsonl'} holds no record {says}"
    for args in (["report", str(run)], ["compare", str(DATA / "run_default_threads"), str(run),
                 "--out", str(tmp_path / "cmp")], ["history", "add", str(run), "--db",
                 str(tmp_path / "h.db")]):  # fmt: skip
        proc = bench(*args, env=bench_env)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(line) and proc.stderr.count("\n") == 1, proc.stderr
        assert f"bench run --resume {run}" in proc.stderr
    assert not (tmp_path / "cmp").exists() and not (tmp_path / "h.db").exists()
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written or removed
    with pytest.raises(api.BenchError, match="holds no record"):
        api.load(run)


def test_an_empty_results_file_of_a_run_in_progress_is_its_records_so_far(
    bench_env, tmp_path
) -> None:
    import shutil

    from bench.lock import RunLock

    run = tmp_path / "run"
    shutil.copytree(DATA / "run_one_thread", run)
    (run / "results.jsonl").write_bytes(b"")
    with RunLock(run) as lock:
        lock.acquire(["bench", "run", "(the test)"])
        proc = bench("report", str(run), env=bench_env)
    assert proc.returncode == 0, proc.stderr
    assert "a run is in progress in this folder" in proc.stderr
    assert "No cell has a record." in (run / "report.md").read_text()
