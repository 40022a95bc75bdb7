"""Stopping a run with signals: after each, no worker process is left, the exit status is the
documented one, and every record on disk before the signal is still there, unchanged.

SIGINT, SIGTERM and SIGHUP stop after the job in flight (exit 128 + the signal); a second
signal abandons the job in flight, a third exits at once; SIGKILL takes the workers with it
(PR_SET_PDEATHSIG). tests/test_resume.py checks that a stopped run resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

DRIVER = (
    "import sys, fault_backends; fault_backends.register(); "
    "from bench.cli import main; raise SystemExit(main(sys.argv[1:]))"
)
# bf16 cells are skipped at planning time: their records are on disk before any signal.
GRID = ["--backends", "fault-slow", "--no-baseline", "--no-control", "--opsets", "17",
        "--batch-sizes", "1,2,3", "--precisions", "fp32,bf16", "--trials", "6",
        "--warmup-iters", "1", "--warmup-time", "0", "--min-iters", "5", "--min-time", "0.2",
        "--max-time", "0.3"]  # fmt: skip


def _children(pid: int) -> list[int]:
    """PIDs whose parent is `pid`, from /proc (no psutil)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")),
                    None)  # fmt: skip
        if ppid == str(pid):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start(out: Path) -> tuple[subprocess.Popen, list[int], bytes]:
    """A run with its workers measuring: the process, its worker PIDs, results.jsonl's bytes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), *sys.path])
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, "run", *GRID, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    deadline = time.monotonic() + 240
    journal = out / "trials.jsonl"
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("\n") >= 1:
            workers = _children(proc.pid)
            assert workers, "no worker process found"
            before = (out / "results.jsonl").read_bytes()
            assert before.count(b"\n") == 3  # the skipped bf16 cells
            return proc, workers, before
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the run did not get going")


def _check_after(proc: subprocess.Popen, workers: list[int], before: bytes, out: Path) -> str:
    _, stderr = proc.communicate(timeout=90)
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)], "a worker outlived bench"
    assert (out / "results.jsonl").read_bytes().startswith(before)
    assert "Traceback" not in stderr, stderr
    return stderr


@pytest.mark.parametrize(
    ("signals", "code"),
    [([signal.SIGTERM], 143), ([signal.SIGHUP], 129), ([signal.SIGINT], 130)],
    ids=["SIGTERM", "SIGHUP", "SIGINT"],
)
def test_one_stop_signal_finishes_the_job_in_flight_and_writes_reports(
    tmp_path: Path, signals: list[int], code: int
) -> None:
    out = tmp_path / "run"
    proc, workers, before = _start(out)
    proc.send_signal(signals[0])
    stderr = _check_after(proc, workers, before, out)
    assert proc.returncode == code, stderr
    assert "stopping after the job in flight" in stderr
    assert f"bench run --resume {out}" in stderr
    assert (out / "report.md").exists()


@pytest.mark.parametrize("count", [2, 3])
def test_repeated_sigint_stops_now(tmp_path: Path, count: int) -> None:
    out = tmp_path / "run"
    proc, workers, before = _start(out)
    for _ in range(count):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
    stderr = _check_after(proc, workers, before, out)
    assert proc.returncode == 130, stderr
    assert f"bench run --resume {out}" in stderr


def test_sigkill_of_bench_takes_its_workers(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, workers, before = _start(out)
    proc.send_signal(signal.SIGKILL)
    _check_after(proc, workers, before, out)
    assert proc.returncode == -signal.SIGKILL


def test_a_closed_stdout_pipe_does_not_cut_the_run_short(tmp_path, bench_env) -> None:
    """`bench run ... | head -1`: the reader goes away after one line; the run still measures,
    records and reports every cell, and exits 0 without a traceback."""
    import json
    import subprocess
    import sys

    from conftest import FAST_TIMING

    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--models", "simple_cnn", "--backends",
         "ort-cpu", "--opsets", "18", "--batch-sizes", "1,2", "--no-baseline", "--out",
         str(out), *FAST_TIMING],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bench_env, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader is gone
    stderr = proc.stderr.read()
    assert proc.wait(timeout=600) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["batch_size"] for r in records if r["kind"] == "cell") == [1, 2]
    assert (out / "report.md").is_file()


def test_a_signal_while_the_reports_are_written_lets_them_finish(monkeypatch) -> None:
    """Measuring over, a signal (the first, or the second after a stop) no longer abandons
    anything: the reports are written; the one after exits at once, as documented."""
    import signal as signals

    import pytest

    from bench.stop import StopRequest

    exits: list[int] = []
    monkeypatch.setattr("bench.stop.os._exit", exits.append)
    for earlier in (0, 1):
        exits.clear()
        stop = StopRequest()
        for _ in range(earlier):  # a first signal while measuring: stop after the job
            stop._handle(signals.SIGINT, None)
        signals.alarm(0)
        stop.measured()
        stop._handle(signals.SIGTERM, None)  # no KeyboardInterrupt: reports go on
        assert stop.requested and stop.signal == (signals.SIGINT if earlier else signals.SIGTERM)
        assert not exits
        stop._handle(signals.SIGTERM, None)
        assert exits == [stop.exit_status]
    fresh = StopRequest()
    fresh._handle(signals.SIGINT, None)
    signals.alarm(0)
    with pytest.raises(KeyboardInterrupt):  # while measuring, the second still stops now
        fresh._handle(signals.SIGINT, None)
