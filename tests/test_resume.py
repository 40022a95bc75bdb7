"""Interrupt a sweep (SIGINT, then SIGKILL) and resume it: nothing lost, nothing measured twice."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAST_TIMING

from bench.record import CellRecord

SWEEP = ["--backends", "ort-cpu", "--opsets", "17", "--batch-sizes", "1,2,3,4,5,6,7,8",
         "--min-time", "0.3", "--max-time", "0.4"]  # fmt: skip
TOTAL = 8 + 8  # ort-cpu cells + torch baseline cells


def _start(out: Path, env: dict[str, str]) -> subprocess.Popen:
    timing = [a for a in FAST_TIMING if a not in ("--min-time", "0.02", "--max-time", "0.2")]
    return subprocess.Popen(
        [sys.executable, "-m", "bench", "run", *SWEEP, *timing, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _wait_for_trials(out: Path, count: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    journal = out / "trials.jsonl"
    while time.monotonic() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the sweep did not get going")


def _cell_ids(out: Path) -> list[str]:
    ids = []
    for line in (out / "results.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line after SIGKILL
        if record.get("kind") == "cell":
            ids.append(record["cell_id"])
    return ids


def _resume(out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", "run", "--resume", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_ends_after_the_job_in_flight_and_resume_finishes(
    tmp_path, bench_env, signum, code
) -> None:
    out = tmp_path / "run"
    proc = _start(out, bench_env)
    _wait_for_trials(out, 3, proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert f"bench run --resume {out}" in stderr
    assert (out / "report.md").exists()  # reports written from what was recorded
    journal = (out / "trials.jsonl").read_text().splitlines()
    assert len(journal) >= 3  # the trials measured so far are kept, samples and all
    before = _cell_ids(out)
    unfinished = [line for line in journal if json.loads(line)["cell_id"] not in before]
    report = (out / "report.md").read_text()
    said = f"{len(unfinished)} trials were measured for cells that have no record yet"
    assert (said in report) == bool(unfinished), (unfinished, report[:500])
    assert json.loads(journal[0])["inference"]["samples_us"]
    before = _cell_ids(out)
    done = _resume(out, bench_env)
    assert done.returncode == 0, done.stderr
    assert f"({len(before)} already done)" in done.stdout or not before
    after = _cell_ids(out)
    assert len(after) == TOTAL and len(set(after)) == TOTAL  # no cell recorded twice
    assert after[: len(before)] == before
    assert not (out / "trials.jsonl").exists()  # every cell has its record now
    # The trials measured before the stop are kept for good, apart from the records.
    stopped = out / "stopped-trials.jsonl"
    assert (stopped.read_text().splitlines() if stopped.exists() else []) == unfinished


def test_sigkill_loses_nothing_recorded_and_resume_finishes(tmp_path, bench_env) -> None:
    out = tmp_path / "run"
    proc = _start(out, bench_env)
    _wait_for_trials(out, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    done = _resume(out, bench_env)
    assert done.returncode == 0, done.stderr
    after = _cell_ids(out)
    assert sorted(set(after)) == sorted(after) and len(after) == TOTAL


def test_retry_failed_reruns_only_failed_cells(tmp_path, bench_env) -> None:
    out = tmp_path / "run"
    subprocess.run(
        [sys.executable, "-m", "bench", "run", "--backends", "ort-cpu", "--opsets", "17",
         "--batch-sizes", "1", "--out", str(out), *FAST_TIMING], check=True, env=bench_env,
        capture_output=True,
    )  # fmt: skip
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    first = next(r for r in records if r["kind"] == "cell")
    first["status"] = "crashed"  # as if the worker had died on this cell
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--resume", str(out), "--retry-failed"],
                          capture_output=True, text=True, env=bench_env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "bench: 1 cells" in done.stdout
    from bench.results import read_records

    records = [r for r in read_records(out) if r["kind"] == "cell"]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)


#: What every cell record has that reports read (a record without it is unreadable).
CELL = {"model": "m", "backend": "x", "precision": "fp32", "batch_size": 1}


def test_a_torn_last_line_is_dropped_before_appending(tmp_path) -> None:
    from bench.results import ResultsWriter, read_records

    good = {"schema_version": 3, "cell_id": "a", "status": "ok", **CELL}
    (tmp_path / "results.jsonl").write_text(json.dumps(good) + '\n{"schema_version": 3, "cell')
    writer = ResultsWriter(tmp_path)
    writer.append(CellRecord(run_id="r", cell_id="b", model="m", backend="x", device="cpu",
                             status="ok"))  # fmt: skip
    writer.close()
    assert [r["cell_id"] for r in read_records(tmp_path)] == ["a", "b"]


def test_a_whole_last_record_missing_its_newline_is_kept(tmp_path) -> None:
    from bench.results import ResultsWriter, read_records

    good = {"schema_version": 3, "cell_id": "a", "status": "ok", **CELL}
    (tmp_path / "results.jsonl").write_text(json.dumps(good))  # no trailing newline
    writer = ResultsWriter(tmp_path)
    writer.append(CellRecord(run_id="r", cell_id="b", model="m", backend="x", device="cpu",
                             status="ok"))  # fmt: skip
    writer.close()
    assert [r["cell_id"] for r in read_records(tmp_path)] == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b'[1, 2]\n', "a JSON list, not a record"),
     (b'garbage{\n{"schema_version": 3, "cell_id": "a", "status": "ok"}\n', ":1: not JSON"),
     (b'{"schema_version": 3, "cell_id": "a", "status": 5}\n', "status 5; valid: ok"),
     (b'{"cell_id": "a", "status": "ok"}\n', "no integer schema_version"),
     (b'\xff\xfe{}\n', "not UTF-8 text")],
)  # fmt: skip
def test_a_damaged_results_file_is_one_error(tmp_path, content: bytes, message: str) -> None:
    from bench.errors import BenchError
    from bench.results import read_records

    (tmp_path / "results.jsonl").write_bytes(content)
    with pytest.raises(BenchError, match=re.escape(message)):
        read_records(tmp_path)


def test_a_folder_stopped_before_its_first_record_counts_its_trials(tmp_path) -> None:
    """`bench report` on a run stopped (or killed) before any cell ended: it has nothing to
    report, and says how many trials are kept and what measures their cells."""
    from bench.errors import BenchError
    from bench.rundata import read_run

    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"run_id": "r", "config": {}}')
    (out / "results.jsonl").write_text("")
    trials = [{"cell_id": f"m/ort-cpu/c{i}", "index": i, "inference": {"samples_us": [1.0]}}
              for i in range(3)]  # fmt: skip
    (out / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))
    with pytest.raises(BenchError, match=r"holds no record \(empty\): 3 trials were measured "
                       rf"for cells that have no record yet .*bench run --resume {out}"):  # fmt: skip
        read_run(out)
