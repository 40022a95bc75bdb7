"""The history database: one SQLite file (stdlib `sqlite3`), its layout, adding runs, reading
them back.

SQLite, not DuckDB: it ships with Python (no new dependency), and several processes may write
one file safely: each run is added in one `BEGIN IMMEDIATE` transaction, and a writer that
finds the file locked waits (busy timeout) instead of failing. DuckDB lets one process at a
time open a file for writing; a second `bench history add` would fail, not wait.
The layout is documented in results/README.md ("The history database").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.errors import BenchError
from bench.history.metrics import KEY_COLUMNS, METRICS, row_of

LAYOUT_VERSION = 1
BUSY_TIMEOUT_S = 120.0
ENV_VAR = "BENCH_HISTORY_DB"
RUN_COLUMNS = ("run_id", "added_at", "source", "host", "cpu_model", "bench_version",
               "bench_commit", "unreadable", "env_json", "config_json")  # fmt: skip
CELL_COLUMNS = ("run_id", "cell_id", *KEY_COLUMNS, "parity_passed", *METRICS, "schema_version",
                "record_json")  # fmt: skip
_REAL = set(METRICS)
_INT = {"opset_requested", "opset_actual", "batch_size", "parity_passed", "schema_version"}

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE, added_at TEXT NOT NULL, source TEXT NOT NULL, host TEXT,
    cpu_model TEXT, bench_version TEXT, bench_commit TEXT, unreadable INTEGER NOT NULL,
    env_json TEXT NOT NULL, config_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    {
    ", ".join(
        f"{c} {'REAL' if c in _REAL else 'INTEGER' if c in _INT else 'TEXT'}" for c in CELL_COLUMNS
    )
},
    PRIMARY KEY (run_id, cell_id),
    FOREIGN KEY (run_id) REFERENCES runs (run_id));
CREATE INDEX IF NOT EXISTS cells_model_backend ON cells (model, backend);
"""


def default_db() -> Path:
    """$BENCH_HISTORY_DB, else results/history.sqlite (beside the run folders)."""
    return Path(os.environ.get(ENV_VAR) or Path("results") / "history.sqlite")


@dataclass(frozen=True)
class Added:
    """What adding one run changed."""

    run_id: str
    new_run: bool
    new_cells: int
    updated_cells: int
    unchanged_cells: int


def _fail(path: Path, exc: sqlite3.Error, write: bool) -> BenchError:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return BenchError(f"{path} is not a bench history database ({text}); choose another "
                          "file with --db")  # fmt: skip
    return BenchError(f"history database {path}: {text}" + ("; nothing was added" if write else ""))


@contextmanager
def connect(path: Path, write: bool) -> Iterator[sqlite3.Connection]:
    """A connection to the database at `path`, its layout checked; errors as one line.
    Read-only use never creates the file."""
    if not write and not path.is_file():
        raise BenchError(f"no history database at {path}: add runs with `bench history add "
                         f"RUN_DIR... --db {path}`")  # fmt: skip
    if write and path.parent and not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BenchError(f"--db: cannot make {path.parent} ({exc.strerror or exc})") from None
    uri = f"file:{quote(str(path.resolve()))}?mode={'rwc' if write else 'ro'}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise _fail(path, exc, write) from None
    try:
        if write:
            conn.execute("BEGIN IMMEDIATE")
            _refuse_foreign(conn, path)
            for statement in filter(str.strip, SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('layout_version', ?)",
                         (str(LAYOUT_VERSION),))  # fmt: skip
            conn.execute("COMMIT")
        _check_layout(conn, path)
        yield conn
    except sqlite3.Error as exc:
        raise _fail(path, exc, write) from None
    finally:
        conn.close()


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """An SQLite file that holds tables but no bench layout is someone else's: never write
    bench's tables into it."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if names and "meta" not in names:
        conn.execute("ROLLBACK")
        raise BenchError(f"{path} is an SQLite file but not a bench history database (it holds "
                         f"other tables: {', '.join(sorted(names)[:5])}); choose another file "
                         "with --db")  # fmt: skip


def _check_layout(conn: sqlite3.Connection, path: Path) -> None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'layout_version'").fetchone()
    except sqlite3.OperationalError:
        row = None
    if row is None:
        raise BenchError(f"{path} is an SQLite file but not a bench history database (no "
                         "layout_version); choose another file with --db")  # fmt: skip
    if not str(row[0]).isdigit() or int(row[0]) > LAYOUT_VERSION:
        raise BenchError(f"{path} has history layout {row[0]}; this bench reads layouts up to "
                         f"{LAYOUT_VERSION}: upgrade bench to read it")  # fmt: skip


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def add_run(conn: sqlite3.Connection, run_id: str, source: Path, env: Mapping[str, Any],
            config: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
            unreadable: int) -> Added:  # fmt: skip
    """Add one run in one transaction: a run or cell already held with the same record is
    left alone (adding again changes nothing); a cell whose record changed (a resumed run
    measured it again) is replaced."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        new_run = conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None
        if new_run:  # a plain INSERT: INSERT OR IGNORE would still advance the sequence
            conn.execute(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(RUN_COLUMNS))})",
                (run_id, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                 str(source.resolve()), _text(env.get("host")), _text(env.get("cpu_model")),
                 _text(env.get("bench_version")), _text(env.get("bench_commit")), unreadable,
                 json.dumps(env, sort_keys=True), json.dumps(config, sort_keys=True)),
            )  # fmt: skip
        counts = [0, 0, 0]
        for record in records:
            row = {"run_id": run_id, "cell_id": str(record.get("cell_id")), **row_of(record),
                   "schema_version": record.get("schema_version"),
                   "record_json": json.dumps(record, sort_keys=True)}  # fmt: skip
            held = conn.execute("SELECT record_json FROM cells WHERE run_id = ? AND cell_id = ?",
                                (run_id, row["cell_id"])).fetchone()  # fmt: skip
            if held is not None and held[0] == row["record_json"]:
                counts[2] += 1
                continue
            conn.execute(f"INSERT OR REPLACE INTO cells ({', '.join(CELL_COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(CELL_COLUMNS))})",
                         [row[c] for c in CELL_COLUMNS])  # fmt: skip
            counts[0 if held is None else 1] += 1
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return Added(run_id, new_run, *counts)


def runs(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every run in the order it was added, with its count of cells."""
    conn.row_factory = sqlite3.Row
    rows = conn.execute(
        "SELECT runs.*, (SELECT COUNT(*) FROM cells WHERE cells.run_id = runs.run_id) AS cells "
        "FROM runs ORDER BY seq"
    ).fetchall()
    return [dict(r) for r in rows]


def cells(conn: sqlite3.Connection, where: Mapping[str, Any] | None = None,
          columns: Sequence[str] = ()) -> list[dict[str, Any]]:  # fmt: skip
    """Cells joined with their run's order and machine, in run order; `where` is column ->
    value (equality), columns checked against the layout."""
    where = dict(where or {})
    for name in (*where, *columns):
        if name not in CELL_COLUMNS:
            raise ValueError(name)
    picked = ", ".join(f"cells.{c}" for c in columns or CELL_COLUMNS)
    clause = " AND ".join(f"cells.{c} = ?" for c in where) or "1"
    conn.row_factory = sqlite3.Row
    rows = conn.execute(
        f"SELECT runs.seq, runs.added_at, runs.host, runs.bench_commit, {picked} FROM cells "
        f"JOIN runs ON runs.run_id = cells.run_id WHERE {clause} ORDER BY runs.seq, "
        "cells.cell_id",
        list(where.values()),
    ).fetchall()
    return [dict(r) for r in rows]


def distinct(
    conn: sqlite3.Connection, column: str, where: Mapping[str, Any] | None = None
) -> list[Any]:
    """The values a cell column takes (for one-line errors naming the valid choices)."""
    if column not in CELL_COLUMNS or any(c not in CELL_COLUMNS for c in where or {}):
        raise ValueError(column)
    clause = " AND ".join(f"{c} = ?" for c in where or {}) or "1"
    rows = conn.execute(f"SELECT DISTINCT {column} FROM cells WHERE {clause}",
                        list((where or {}).values())).fetchall()  # fmt: skip
    return sorted((r[0] for r in rows if r[0] is not None), key=str)
