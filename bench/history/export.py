"""`bench history export`: every cell of every run as one flat table, CSV (stdlib) or Parquet
(pyarrow, the `parquet` extra). The raw records stay in the database (`cells.record_json`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.diskio import WriteFailed, write_atomic
from bench.errors import BenchError
from bench.history.store import CELL_COLUMNS

COLUMNS = ["seq", "added_at", "host", "bench_commit",
           *[c for c in CELL_COLUMNS if c != "record_json"]]  # fmt: skip
PYARROW_HINT = "parquet export needs pyarrow: pip install 'bench[parquet]' (or pip install pyarrow)"


def _csv_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def _parquet_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise BenchError(PYARROW_HINT) from None
    table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows])
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def export(rows: Sequence[dict[str, Any]], fmt: str, out: Path) -> None:
    """Write `rows` (store.cells) to `out` whole or not at all."""
    data = _parquet_bytes(rows) if fmt == "parquet" else _csv_bytes(rows)
    try:
        write_atomic({out: data})
    except WriteFailed as exc:
        raise BenchError(f"--out: {exc}") from None
