"""`bench history`: add (idempotent, concurrent, lenient reading, newer schemas refused), list,
show (table, chart, marks), export, and hostile databases."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import SCHEMA_VERSION
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
    assert {v for v, _ in kept} == {SCHEMA_VERSION}
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


def _slower_and_failing(record: dict[str, Any]) -> None:
    """ort-cpu b1: every trial three times slower; ort-cpu b4: parity now fails."""
    if record["cell_id"] == "simple_cnn/ort-cpu/auto-op17/b1/fp32":
        block = record["latency"]["inference"]
        for trial in block["trials"]:
            trial["median_us"] *= 3
        block["center_us"] *= 3
    if record["cell_id"] == "simple_cnn/ort-cpu/auto-op17/b4/fp32":
        record["status"] = "parity_failed"
        record["parity"]["passed"] = False


def test_show_marks_resolved_steps_and_parity_changes(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    later = copy_run(DATA / "v3_default_threads", tmp_path / "later", "later", _slower_and_failing)
    assert bench(capsys, "history", "add", str(later), "--db", str(db))[0] == 0
    chart = tmp_path / "chart.html"
    status, out, err = bench(capsys, "history", "show", "--model", "simple_cnn", "--backend",
                             "ort-cpu", "--db", str(db), "--out", str(chart))  # fmt: skip
    assert status == 0, err
    lines = out.splitlines()
    b1 = [line for line in lines if line.startswith("later") and " b1 " in line]
    b4 = [line for line in lines if line.startswith("later") and " b4 " in line]
    assert len(b1) == 1 and "latency slower" in b1[0] and b1[0].endswith("<<"), out
    assert len(b4) == 1 and "parity pass -> FAIL" in b4[0] and "FAIL" in b4[0], out
    # runs without trials (schema 1 and 2) cannot resolve a step: never marked
    assert not [line for line in lines if line.startswith("data_") and line.endswith("<<")]
    assert f"chart: {chart}" in out
    page = chart.read_text()
    library = page.index("<script type='text/javascript'>")  # offline: plotly.js inside
    assert "plotly" in page[library : library + 300].lower()
    outside = page[:library] + page[page.index("</script>", library) :]
    assert "src=" not in outside and "cdn.plot.ly" not in outside
    assert "latency step: slower" in page and "parity changed" in page
    assert page.count("later") >= 2


def test_show_filters_and_names_valid_choices(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["history", "show", "--db", str(db)]
    status, out, err = bench(capsys, *base, "--model", "simple_cnn", "--backend", "openvino",
                             "--batch-size", "4", "--metric", "p90_us")  # fmt: skip
    assert status == 0, err
    assert " b1 " not in out and out.count(" b4 ") == 4
    assert (db.parent / "history-simple_cnn-openvino-p90_us.html").is_file()
    status, _, err = bench(capsys, *base, "--model", "resnet", "--backend", "ort-cpu")
    one_line_error(status, err, "--model", "'resnet'", "valid: control, simple_cnn")
    status, _, err = bench(capsys, *base, "--model", "simple_cnn", "--backend", "ort-cuda")
    one_line_error(status, err, "--backend", "valid: openvino, ort-cpu, torch")
    status, _, err = bench(capsys, *base, "--model", "simple_cnn", "--backend", "torch",
                           "--precision", "bf16")  # fmt: skip
    one_line_error(status, err, "--precision", "valid: fp32")
    for hostile in (["--batch-size", "0"], ["--batch-size", "x"], ["--metric", "nope"]):
        with pytest.raises(SystemExit) as exit_:
            main([*base, "--model", "simple_cnn", "--backend", "torch", *hostile])
        assert exit_.value.code == 2
        one_line_error(2, capsys.readouterr().err)


def test_export_csv_and_parquet(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import csv

    out = tmp_path / "h.csv"
    status, text, err = bench(capsys, "history", "export", "--out", str(out), "--db", str(db))
    assert status == 0 and "25 cells" in text, err
    table = list(csv.DictReader(out.open()))
    assert len(table) == 25 and {r["run_id"] for r in table} == set(CELLS)
    assert "record_json" not in table[0] and table[0]["center_us"]
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "h.parquet"
    status, _, err = bench(capsys, "history", "export", "--format", "parquet", "--out", str(out),
                           "--db", str(db))  # fmt: skip
    assert status == 0, err
    frame = pq.read_table(out)
    assert frame.num_rows == 25 and "parity_passed" in frame.column_names
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    status, _, err = bench(capsys, "history", "export", "--format", "parquet", "--out",
                           str(tmp_path / "x.parquet"), "--db", str(db))  # fmt: skip
    one_line_error(status, err, "pip install 'bench[parquet]'")
    assert not (tmp_path / "x.parquet").exists()


def test_hostile_databases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = str(DATA / "run_one_thread")
    missing = tmp_path / "missing.sqlite"
    for action in (["list"], ["show", "--model", "m", "--backend", "b"], ["export", "--out",
                   str(tmp_path / "x.csv")]):  # fmt: skip
        status, _, err = bench(capsys, "history", *action, "--db", str(missing))
        one_line_error(status, err, "no history database", "bench history add")
    assert not missing.exists(), "reading never creates the database"
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_text("not a database at all\n" * 100)
    for path in (corrupt, garbage):
        before = path.read_bytes()
        for action in (["add", run], ["list"]):
            status, _, err = bench(capsys, "history", *action, "--db", str(path))
            one_line_error(status, err, str(path))
        assert path.read_bytes() == before
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    status, _, err = bench(capsys, "history", "list", "--db", str(foreign))
    one_line_error(status, err, "not a bench history database")
    before = foreign.read_bytes()
    status, _, err = bench(capsys, "history", "add", run, "--db", str(foreign))
    one_line_error(status, err, "not a bench history database", "holds other tables: t")
    assert foreign.read_bytes() == before, "no bench table is written into another's file"
    status, _, err = bench(capsys, "history", "add", run, "--db", "")
    one_line_error(status, err, "--db")


@pytest.fixture
def read_only_db(db: Path, tmp_path: Path) -> Iterator[Path]:
    """The history seen through a read-only bind mount (root ignores chmod)."""
    view = tmp_path / "ro"
    view.mkdir()
    done = subprocess.run(["mount", "--bind", str(db.parent), str(view)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("mount --bind needs root")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        yield view / db.name
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_a_read_only_database_is_read_and_refuses_adding(
    read_only_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = read_only_db.read_bytes()
    status, out, _ = bench(capsys, "history", "list", "--db", str(read_only_db))
    assert status == 0 and "data_v1" in out
    copy = copy_run(DATA / "run_one_thread", tmp_path / "new", "new")
    status, _, err = bench(capsys, "history", "add", str(copy), "--db", str(read_only_db))
    one_line_error(status, err, "readonly", "nothing was added")
    status, _, err = bench(capsys, "history", "show", "--model", "simple_cnn", "--backend",
                           "torch", "--db", str(read_only_db))  # fmt: skip
    one_line_error(status, err, "--out", "could not write")
    assert read_only_db.read_bytes() == before


def test_a_folder_is_added_under_its_run_json_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A merged folder's records keep their shards' run ids; it is one run, run.json's."""
    merged = copy_run(DATA / "run_one_thread", tmp_path / "merged", "shard-run")
    (merged / "run.json").write_text(json.dumps({**json.loads((merged / "run.json").read_text()),
                                                 "run_id": "merged-run"}))  # fmt: skip
    db = tmp_path / "h.sqlite"
    status, _, err = bench(capsys, "history", "add", str(merged), "--db", str(db))
    assert status == 0, err
    assert [r[0] for r in rows(db, "SELECT run_id FROM runs")] == ["merged-run"]
