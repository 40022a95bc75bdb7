"""`bench history`: add (idempotent, concurrent, lenient reading, newer schemas refused), list,
show (table, chart, marks), export, and hostile databases."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main

DATA = Path(__file__).resolve().parent / "data"
RUNS = sorted(p for p in DATA.iterdir() if p.is_dir())
CELLS = {"data_a": 6, "data_b": 6, "data_v1": 6, "v3_default_threads": 7}


def bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(status: int, err: str, *needles: str) -> None:
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def copy_run(src: Path, dst: Path, run_id: str,
             edit: Callable[[dict[str, Any]], None] | None = None) -> Path:  # fmt: skip
    """A copy of a run folder under another run id, each record passed through `edit`."""
    shutil.copytree(src, dst)
    lines = []
    for line in (src / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        record["run_id"] = run_id
        if edit:
            edit(record)
        lines.append(json.dumps(record))
    (dst / "results.jsonl").write_text("\n".join(lines) + "\n")
    run = json.loads((src / "run.json").read_text())
    (dst / "run.json").write_text(json.dumps({**run, "run_id": run_id}))
    return dst


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A history holding the four runs of tests/data."""
    path = tmp_path / "h.sqlite"
    status, _out, err = bench(capsys, "history", "add", *map(str, RUNS), "--db", str(path))
    assert status == 0, err
    return path


def test_add_holds_every_run_of_tests_data_and_adding_again_changes_nothing(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dict(rows(db, "SELECT run_id, COUNT(*) FROM cells GROUP BY run_id")) == CELLS
    assert [r[0] for r in rows(db, "SELECT run_id FROM runs ORDER BY seq")] == [
        "data_a", "data_b", "data_v1", "v3_default_threads"]  # fmt: skip
    with sqlite3.connect(db) as conn:
        before = list(conn.iterdump())
    status, out, err = bench(capsys, "history", "add", *map(str, RUNS), "--db", str(db))
    assert status == 0, err
    assert out.count("already held, nothing changed") == 4, out
    with sqlite3.connect(db) as conn:
        assert list(conn.iterdump()) == before
    # the records kept are the upgraded ones, whole
    kept = rows(db, "SELECT schema_version, record_json FROM cells WHERE run_id = 'data_v1'")
    assert {v for v, _ in kept} == {4}
    assert all(json.loads(r)["run_id"] == "data_v1" for _, r in kept)
    status, out, err = bench(capsys, "history", "list", "--db", str(db))
    assert status == 0 and "v3_default_threads" in out and str(DATA / "run_one_thread") in out


def test_a_cell_measured_again_replaces_its_record_and_nothing_else(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def faster(record: dict[str, Any]) -> None:
        if record["cell_id"] == "simple_cnn/ort-cpu/auto-op17/b1/fp32":
            record["latency"]["inference"]["center_us"] = 1.0

    again = copy_run(DATA / "run_one_thread", tmp_path / "again", "data_b", faster)
    status, out, err = bench(capsys, "history", "add", str(again), "--db", str(db))
    assert status == 0, err
    assert "data_b: 0 new cells, 1 updated, 5 already held" in out
    center = rows(db, "SELECT center_us FROM cells WHERE run_id = 'data_b' AND cell_id = "
                  "'simple_cnn/ort-cpu/auto-op17/b1/fp32'")  # fmt: skip
    assert center == [(1.0,)]
    assert len(rows(db, "SELECT * FROM runs")) == 4


def test_damaged_lines_are_skipped_and_counted_a_newer_schema_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = copy_run(DATA / "run_one_thread", tmp_path / "damaged", "damaged")
    with (damaged / "results.jsonl").open("a") as fh:
        fh.write('{"not": "a record"\n')
    db = tmp_path / "h.sqlite"
    status, _out, err = bench(capsys, "history", "add", str(damaged), "--db", str(db))
    assert status == 0
    assert "results.jsonl:7:" in err and "1 unreadable record" in err
    assert rows(db, "SELECT run_id, unreadable FROM runs") == [("damaged", 1)]
    assert rows(db, "SELECT COUNT(*) FROM cells") == [(6,)]

    def newer(record: dict[str, Any]) -> None:
        record["schema_version"] = 99

    future = copy_run(DATA / "run_default_threads", tmp_path / "future", "future", newer)
    status, _out, err = bench(capsys, "history", "add", str(DATA / "run_default_threads"),
                             str(future), "--db", str(db))  # fmt: skip
    one_line_error(status, err, "schema_version 99", "upgrade bench")
    assert rows(db, "SELECT run_id FROM runs") == [("damaged",)], "a refused folder adds nothing"
    status, _out, err = bench(capsys, "history", "add", str(tmp_path / "nope"), "--db", str(db))
    one_line_error(status, err, "is not a run folder")


ADDER = """
import sys
from bench.cli import main
sys.exit(main(["history", "add", *sys.argv[2:], "--db", sys.argv[1]]))
"""


def test_two_processes_adding_at_once_lose_nothing(tmp_path: Path, bench_env: dict) -> None:
    sources = []
    for i in range(12):
        src = RUNS[i % len(RUNS)]
        sources.append(copy_run(src, tmp_path / f"run{i}", f"run{i}"))
    db = tmp_path / "h.sqlite"
    # each process adds its own six runs and all of tests/data, in opposite orders
    mine = [sources[0::2], sources[1::2]]
    procs = [subprocess.Popen([sys.executable, "-c", ADDER, str(db), *map(str, runs),
                               *map(str, RUNS if i == 0 else RUNS[::-1])],
                              env=bench_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for i, runs in enumerate(mine)]  # fmt: skip
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    expected = {f"run{i}": CELLS[_orig(sources[i])] for i in range(12)}
    expected.update(CELLS)
    assert dict(rows(db, "SELECT run_id, COUNT(*) FROM cells GROUP BY run_id")) == expected
    assert len(rows(db, "SELECT seq FROM runs")) == 16


def _orig(copy: Path) -> str:
    """The tests/data run a copy was made from (copies keep env.json and the cell ids)."""
    index = int(copy.name.removeprefix("run"))
    return json.loads((RUNS[index % len(RUNS)] / "run.json").read_text())["run_id"]
