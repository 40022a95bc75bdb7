"""`bench history add|list|show|export`: every failure is one line (BenchError, exit 2)."""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.diskio import WriteFailed, write_atomic
from bench.errors import BenchError
from bench.history import store
from bench.history.metrics import METRICS
from bench.results import RUN_FILE, read_json
from bench.rundata import RunData, read_run


def _db(args: argparse.Namespace) -> Path:
    if args.db is not None and not args.db.strip():
        raise BenchError("--db: give a file name")
    return Path(args.db) if args.db else store.default_db()


def run_id_of(data: RunData) -> str:
    """run.json's run id (a merged folder's own, though its records keep their shards'),
    else the one the records carry (the most common), else the folder's name."""
    try:
        given = read_json(data.path / RUN_FILE).get("run_id")
    except BenchError:  # a missing or damaged run.json: the reports' caveats say so
        given = None
    if isinstance(given, str) and given.strip():
        return given
    ids = Counter(str(r["run_id"]) for r in data.records if r.get("run_id"))
    return ids.most_common(1)[0][0] if ids else data.path.name


def cmd_add(args: argparse.Namespace) -> int:
    """Read every folder first (a refused one adds nothing), then add each in one transaction."""
    runs = []
    for folder in dict.fromkeys(args.run_dirs):
        data = read_run(Path(folder), with_config=True)
        for line in [*data.problem_lines(), *data.caveats]:
            print(f"bench: {line}", file=sys.stderr)
        runs.append(data)
    with store.connect(_db(args), write=True) as conn:
        for data in runs:
            added = store.add_run(conn, run_id_of(data), data.path, data.env, data.config,
                                  data.records, len(data.unreadable))  # fmt: skip
            if added.new_cells or added.updated_cells:
                print(f"{added.run_id}: {added.new_cells} new cells, {added.updated_cells} "
                      f"updated, {added.unchanged_cells} already held ({data.path})")  # fmt: skip
            else:
                print(f"{added.run_id}: already held, nothing changed "
                      f"({added.unchanged_cells} cells; {data.path})")  # fmt: skip
    return 0


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)  # fmt: skip


def cmd_list(args: argparse.Namespace) -> int:
    with store.connect(_db(args), write=False) as conn:
        runs = store.runs(conn)
    if not runs:
        print("the history holds no run yet: bench history add RUN_DIR...")
        return 0
    headers = ["#", "run", "added (UTC)", "host", "cells", "unreadable", "folder"]
    rows = [[r["seq"], r["run_id"], r["added_at"], r["host"] or "-", r["cells"],
             r["unreadable"], r["source"]] for r in runs]  # fmt: skip
    print(_table(headers, rows))
    return 0


def _choose(conn: Any, column: str, value: Any, where: dict[str, Any], flag: str) -> None:
    """One line naming the valid choices when no cell has `column` = `value`."""
    choices = store.distinct(conn, column, where)
    if value not in choices:
        held = ", ".join(map(str, choices)) or "none"
        within = "".join(f" for {k} {v}" for k, v in where.items())
        raise BenchError(f"{flag}: no cell has {value!r}{within} in the history; valid: {held}")


def _slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", p).strip("_.") or "x" for p in parts)


def cmd_show(args: argparse.Namespace) -> int:
    from bench.history.series import HEADERS, points, table_rows
    from bench.report.history_chart import history_page

    db = _db(args)
    where: dict[str, Any] = {}
    with store.connect(db, write=False) as conn:
        if not store.runs(conn):
            raise BenchError(f"{db} holds no run yet: bench history add RUN_DIR... --db {db}")
        for column, value, flag in (("model", args.model, "--model"),
                                    ("backend", args.backend, "--backend"),
                                    ("batch_size", args.batch_size, "--batch-size"),
                                    ("precision", args.precision, "--precision")):  # fmt: skip
            if value is not None:
                _choose(conn, column, value, where, flag)
                where[column] = value
        rows = store.cells(conn, where)
    found = points(rows, args.metric)
    title = (
        f"{args.model} on {args.backend}: {args.metric} across {len({p.seq for p in found})} runs"
    )
    table = table_rows(found)
    print(title)
    print(_table(HEADERS, table))
    print("<<: a latency step bench compare resolves (p < 0.01) or a parity change")
    out = (
        Path(args.out)
        if args.out
        else db.parent / f"history-{_slug(args.model, args.backend, args.metric)}.html"
    )
    html = history_page(title, METRICS[args.metric], HEADERS, table, found, args.metric)
    try:
        write_atomic({out: html.encode("utf-8")})
    except WriteFailed as exc:
        raise BenchError(f"--out: {exc}") from None
    print(f"chart: {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bench.history.export import export

    with store.connect(_db(args), write=False) as conn:
        rows = store.cells(conn)
    export(rows, args.format, Path(args.out))
    print(f"{len(rows)} cells -> {args.out}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Dispatch `bench history <action>`."""
    actions = {"add": cmd_add, "list": cmd_list, "show": cmd_show, "export": cmd_export}
    return actions[args.history_command](args)
