"""scripts/fidelity.py: structure of its output, its statistics, and how it fails."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fidelity.py"


def _module():
    spec = importlib.util.spec_from_file_location("fidelity_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The script allows one copy per machine; the tests' copies use a lock of their own, so that
#: they neither wait for nor stop a real check running on the same machine.
TEST_LOCK = Path(tempfile.gettempdir()) / f"bench-fidelity-test-{os.getpid()}.lock"


def _script(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "BENCH_FIDELITY_LOCK": str(TEST_LOCK)},
    )  # fmt: skip


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


@pytest.mark.parametrize("kind", ["missing", "directory", "not executable"])
def test_a_benchmark_app_given_that_cannot_run_is_refused(tmp_path, kind: str) -> None:
    given = {"missing": tmp_path / "nope", "directory": tmp_path, "not executable": SCRIPT}[kind]
    proc = _script("--backends", "openvino", "--benchmark-app", str(given), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"--benchmark-app: {given} is not an executable file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_second_copy_on_the_same_machine_is_refused(tmp_path) -> None:
    import fcntl

    lock = tmp_path / "fidelity.lock"
    with open(lock, "w") as held:
        held.write("4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), "--backends", "ort-cpu"], capture_output=True,
            text=True, timeout=120, env={**os.environ, "BENCH_FIDELITY_LOCK": str(lock)},
        )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "fidelity: error: another fidelity.py (pid 4242) is measuring on this machine; two at "
        "once slow each other and neither's figures would hold: wait for it to end"
    )


def test_the_lock_is_one_per_machine_whatever_tmpdir_says(monkeypatch, tmp_path) -> None:
    fidelity = _module()
    monkeypatch.delenv("BENCH_FIDELITY_LOCK", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert fidelity._lock_path() == "/tmp/" + fidelity.LOCK_NAME


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo"])
def test_a_lock_path_that_is_not_a_plain_file_is_refused_untouched(
    monkeypatch, tmp_path, kind: str
) -> None:
    fidelity = _module()
    victim = tmp_path / "victim"
    victim.write_text("DATA")
    lock = tmp_path / "fidelity.lock"
    {"symlink": lambda: lock.symlink_to(victim), "directory": lock.mkdir,
     "fifo": lambda: os.mkfifo(lock)}[kind]()  # fmt: skip
    monkeypatch.setenv("BENCH_FIDELITY_LOCK", str(lock))
    with pytest.raises(fidelity.Failure) as info:
        fidelity._machine_lock()
    assert str(info.value).startswith(f"cannot use the lock file {lock} (")
    assert str(info.value).endswith("remove it, or name another with BENCH_FIDELITY_LOCK")
    assert victim.read_text() == "DATA"


def test_strict_fails_when_a_backend_was_skipped(monkeypatch, tmp_path) -> None:
    fidelity = _module()
    monkeypatch.setenv("BENCH_FIDELITY_LOCK", str(tmp_path / "lock"))
    monkeypatch.setattr(fidelity, "_find_benchmark_app", lambda given: (None, "not found"))
    args = fidelity._parse_args(["--backends", "openvino", "--strict"])
    assert fidelity.orchestrate(args) == 1
    monkeypatch.setenv("BENCH_FIDELITY_LOCK", str(tmp_path / "lock2"))  # the first is held
    args = fidelity._parse_args(["--backends", "openvino"])
    assert fidelity.orchestrate(args) == 0


def test_ort_turns_hold_at_least_fifty_calls_at_the_fastest_sides_pace() -> None:
    fidelity = _module()
    side = [sys.executable, "-c", FAKE_SIDE]  # warm-up median 1000 µs
    got, turn = fidelity._burst_round(
        {"a": side, "b": side}, ["a", "b"], 2, "round (x)", timeout=60, seconds=0.002
    )
    assert turn == pytest.approx(0.05)  # not 0.002 / 2
    assert got["a"]["samples"] == got["b"]["samples"] == 2


def test_figures_survive_a_json_path_that_fails_at_the_end(tmp_path) -> None:
    fidelity = _module()
    with pytest.raises(fidelity.Failure) as info:
        fidelity._write_json(str(tmp_path / "gone" / "f.json"), {"results": [1]})
    message = str(info.value)
    assert message.startswith(f"cannot write --json {tmp_path}/gone/f.json (")
    kept = message.rsplit("the figures are in ", 1)[1]
    assert json.loads(Path(kept).read_text()) == {"results": [1]}
    Path(kept).unlink()


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
        ["bench x3", "reference x3", "bench A/A x3"],
        ["bench A/A x3", "reference x3", "bench x3"],
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


# --------------------------------------------------------------------------------------------
# openvino rounds: benchmark_app frozen outside its turns.

FAKE_APP = """#!{python}
import json, os, sys, time
mode = {mode!r}
with open({pid_file!r}, "w") as fh:
    fh.write(str(os.getpid()))
niter = int(sys.argv[sys.argv.index("-niter") + 1]) if "-niter" in sys.argv else 10**9
step = 0.02 if mode == "slow" else 0.001
print("[Step 8/11] Querying optimal runtime parameters")
print("[ INFO ]   NUM_STREAMS: 1")
print("[Step 9/11] Creating infer requests and preparing input tensors")
if mode == "crash":
    sys.exit("[ ERROR ] could not compile the model")
print("[Step 10/11] Measuring performance")
print("[ INFO ] First inference took 0.10 ms")
gaps, last = [], time.monotonic()
for _ in range(niter if mode != "hang" else 10**9):
    end = time.monotonic() + step
    while time.monotonic() < end:
        pass
    now = time.monotonic()
    gaps.append(now - last)
    last = now
print("[Step 11/11] Dumping statistics report")
print("[ INFO ] Count:               %d iterations" % niter)
print("[ INFO ] Latency:")
print("[ INFO ]    Median:        1.00 ms")
print("[ INFO ]    Max:           %.2f ms" % (max(gaps) * 1000))
with open({gaps_file!r}, "w") as fh:
    json.dump(gaps, fh)
"""

# A side that takes turns as bench's do: ready with its warm-up median, one burst per cue.
FAKE_SIDE = (
    "import json, sys, time\n"
    "print(json.dumps({'ready': 1, 'warm_median_us': 1000.0}), flush=True)\n"
    "n = 0\n"
    "for line in sys.stdin:\n"
    "    if not line.startswith('go'):\n"
    "        break\n"
    "    time.sleep(0.005); n += 1\n"
    "    print(json.dumps({'burst': n}), flush=True)\n"
    "print(json.dumps({'median_us': 1.0, 'samples': n, 'settings': {}, 'loaded': {}}))\n"
)


def _fake_app(tmp_path: Path, mode: str) -> tuple[str, Path, Path]:
    pid_file, gaps_file = tmp_path / f"{mode}.pid", tmp_path / f"{mode}.gaps"
    exe = tmp_path / f"benchmark_app_{mode}"
    exe.write_text(FAKE_APP.format(python=sys.executable, mode=mode, pid_file=str(pid_file),
                                   gaps_file=str(gaps_file)))  # fmt: skip
    exe.chmod(0o755)
    return str(exe), pid_file, gaps_file


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][0] not in "ZX"
    except FileNotFoundError:
        return False


needs_freezing = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="freezes with POSIX signals, checks /proc"
)


@needs_freezing
def test_benchmark_app_is_frozen_while_the_other_sides_take_their_turns(tmp_path) -> None:
    fidelity = _module()
    exe, _, gaps_file = _fake_app(tmp_path, "ok")
    sides = {
        "bench": [sys.executable, "-c", FAKE_SIDE],
        "bench2": [sys.executable, "-c", FAKE_SIDE],
    }
    # --seconds 1 at a 1000 µs warm median: -niter 1000 (a 1 ms busy loop each); turns of 0.25 s
    got, turns = fidelity._frozen_turn_round(
        sides, ["bench", "reference", "bench2"], (exe, "m.onnx", {"x": {"shape": [1, 3]}}, None),
        1.0, 4, "round (openvino, batch 1, round 1)", timeout=60,
    )  # fmt: skip
    app = got["reference"]
    assert app["niter"] == 1000 and app["samples"] == 1000 and app["median_us"] == 1000.0
    assert app["freezes"] >= 2 and turns >= 3
    assert app["median_quantile_shift_at_most"] == pytest.approx(app["freezes"] / 1000)
    assert app["turn_seconds"] == 0.25
    assert app["wall_per_iteration_us"] is None  # its duration includes frozen time
    assert "-niter 1000" in app["command"] and " -t " not in app["command"]
    # Each side took the same number of turns; while they did, the app did not run: its
    # loop saw gaps as long as a turn of the others.
    assert got["bench"]["samples"] == got["bench2"]["samples"] == turns
    gaps = json.loads(gaps_file.read_text())
    assert sum(gap > 0.004 for gap in gaps) >= app["freezes"] - 1


@needs_freezing
def test_a_benchmark_app_that_fails_before_timing_is_one_line(tmp_path, capsys) -> None:
    fidelity = _module()
    exe, _, _ = _fake_app(tmp_path, "crash")
    with pytest.raises(fidelity.Failure) as info:
        fidelity._frozen_turn_round(
            {"bench": [sys.executable, "-c", FAKE_SIDE]}, ["bench", "reference"],
            (exe, "m.onnx", {"x": {"shape": [1]}}, None), 0.2, 4, "round (x)", timeout=60,
        )  # fmt: skip
    assert str(info.value) == (
        "round (x) benchmark_app failed (exit 1): [ ERROR ] could not compile the model"
    )
    assert "could not compile" in capsys.readouterr().err


@needs_freezing
def test_a_benchmark_app_that_never_finishes_is_stopped_and_killed(tmp_path) -> None:
    fidelity = _module()
    exe, pid_file, _ = _fake_app(tmp_path, "hang")
    with pytest.raises(fidelity.Failure) as info:
        fidelity._frozen_turn_round(
            {"bench": [sys.executable, "-c", FAKE_SIDE]}, ["bench", "reference"],
            (exe, "m.onnx", {"x": {"shape": [1]}}, None), 0.02, 1, "round (x)", timeout=60,
        )  # fmt: skip
    assert str(info.value).startswith("round (x): benchmark_app did not finish 100 iterations")
    assert not _alive(int(pid_file.read_text()))


@needs_freezing
def test_a_round_whose_freezes_could_move_benchmark_apps_median_fails(tmp_path) -> None:
    fidelity = _module()
    exe, pid_file, _ = _fake_app(tmp_path, "slow")  # 20 ms calls where the sides say 1 ms
    with pytest.raises(fidelity.Failure) as info:
        fidelity._frozen_turn_round(
            {"bench": [sys.executable, "-c", FAKE_SIDE]}, ["bench", "reference"],
            (exe, "m.onnx", {"x": {"shape": [1]}}, None), 0.1, 20, "round (x)", timeout=60,
        )  # fmt: skip
    message = str(info.value)
    assert message.startswith("round (x): benchmark_app was frozen ")
    assert "of its distribution (at most 5% is used): give more --seconds" in message
    assert not _alive(int(pid_file.read_text()))


DRIVER_CALLS = {
    # taking turns: frozen most of the time
    "frozen": "side = [sys.executable, '-c', FAKE_SIDE]\n"
    "f._frozen_turn_round({'bench': side}, ['bench', 'reference'],\n"
    "    (EXE, 'm.onnx', {'x': {'shape': [1]}}, None), 1.0, 1, 'r', timeout=60)\n",
    # one after another: -t given, the fake loops for ever
    "sequential": "f._run_benchmark_app(EXE, 'm.onnx', {'x': {'shape': [1]}}, 1, None, 'r')\n",
}


@needs_freezing
@pytest.mark.parametrize("mode", sorted(DRIVER_CALLS))
def test_benchmark_app_dies_with_its_orchestrator(tmp_path, mode: str) -> None:
    exe, pid_file, _ = _fake_app(tmp_path, "hang")
    driver = (
        f"import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('f', {str(SCRIPT)!r})\n"
        f"f = importlib.util.module_from_spec(spec); spec.loader.exec_module(f)\n"
        f"EXE, FAKE_SIDE = {exe!r}, {FAKE_SIDE!r}\n" + DRIVER_CALLS[mode]
    )
    proc = subprocess.Popen([sys.executable, "-c", driver])
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # into its measurement: frozen or running
        app_pid = int(pid_file.read_text())
        assert _alive(app_pid)
        proc.kill()  # SIGKILL: no finally block runs
        proc.wait()
        deadline = time.monotonic() + 10
        while _alive(app_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(app_pid)
    finally:
        if proc.poll() is None:
            proc.kill()


@needs_freezing
def test_a_benchmark_app_run_one_after_another_has_a_time_limit(tmp_path, capsys) -> None:
    fidelity = _module()
    exe, pid_file, _ = _fake_app(tmp_path, "hang")
    with pytest.raises(fidelity.Failure) as info:
        fidelity._run_benchmark_app(exe, "m.onnx", {"x": {"shape": [1]}}, 1, None, "r", 2)
    assert str(info.value) == "r timed out after 2 s"
    assert not _alive(int(pid_file.read_text()))
    assert "First inference took" in capsys.readouterr().err


@pytest.mark.slow
@needs_freezing
def test_openvino_rounds_take_turns_with_benchmark_app_and_a_bare_loop(tmp_path) -> None:
    pytest.importorskip("openvino")
    beside = Path(sys.executable).parent / "benchmark_app"
    if not beside.exists():
        pytest.skip("benchmark_app is not installed beside python")
    out = tmp_path / "fidelity.json"
    proc = _script(
        "--backends", "openvino", "--rounds", "2", "--seconds", "0.3", "--batch-sizes", "1",
        "--warmup-iters", "10", "--warmup-time", "0.02", "--bursts", "3", "--json", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert "benchmark_app frozen (SIGSTOP) outside its turns of 0.1 s" in text
    assert "bench / bare OpenVINO Python loop: geomean" in text and "target <= 1.05" in text
    assert "binding: the bare loop's calls / OpenVINO's own timer" in text
    report = json.loads(out.read_text())
    assert report["method"]["bursts"]["openvino"] == 3
    assert report["method"]["seconds"]["openvino"] == 0.3  # not rounded to whole seconds
    (result,) = report["results"]
    assert result["harness"]["ratio"]["n"] == 2 and result["binding"]["n"] == 2
    first, second = result["rounds"]
    assert [side.split(" x")[0] for side in first["order"]] == [
        "bench",
        "reference",
        "bench A/A",
        "bare loop",
    ]
    assert second["order"][0].startswith("bare loop x")
    assert "benchmark_app frozen " in text and "of its latencies stretched by a freeze" in text
    pids = set()
    for row in result["rounds"]:
        sides = row["processes"]
        assert row["harness_ratio"] == pytest.approx(row["bench_us"] / row["bare_us"])
        app = sides["reference"]
        assert app["freezes"] >= 1 and app["samples"] == app["niter"]
        assert app["loaded"] == {"torch": False, "onnxruntime": False}
        assert sides["bare"]["loaded"] == {
            "torch": False,
            "onnxruntime": False,
            "openvino": True,
            "bench": False,
        }
        assert 0 < sides["bare"]["runtime_timer_median_us"] <= sides["bare"]["median_us"] * 1.5
        for side in sides.values():
            pids.add(side["pid"])
    assert len(pids) == 8
