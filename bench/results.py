"""results.jsonl: one JSON record per cell, appended and flushed as each cell finishes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import SCHEMA_VERSION
from bench.errors import BenchError
from bench.record import CLEAN_STATUSES, STATUSES, CellRecord, jsonable
from bench.upgrade_parity import upgrade_parity

__all__ = ["CLEAN_STATUSES", "STATUSES", "ResultsWriter", "read_records", "upgrade_record"]

RESULTS_FILE = "results.jsonl"
ENV_FILE = "env.json"
RUN_FILE = "run.json"
TRIALS_FILE = "trials.jsonl"


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line left half-written by a killed run, so appends start on a fresh line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        last = data[data.rfind(b"\n") + 1 :]
        try:
            json.loads(last)
        except ValueError:
            with open(path, "r+b") as fh:  # torn: cut it
                fh.truncate(data.rfind(b"\n") + 1)
            return
        with open(path, "ab") as fh:  # whole, only its newline missing: keep it
            fh.write(b"\n")


class ResultsWriter:
    """Appends records to results.jsonl; each is on disk (fsync) before the next cell starts."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / RESULTS_FILE
        _drop_torn_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def append(self, record: CellRecord) -> None:
        self._fh.write(json.dumps(record.to_json(), allow_nan=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


class TrialJournal:
    """trials.jsonl: every trial's raw samples, flushed as it ends, while its cell has no
    record yet. A run that is stopped or killed keeps it (nothing measured is lost); a run
    whose every cell got its record removes it, the records holding the same samples."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.complete = False

    def __enter__(self) -> TrialJournal:
        _drop_torn_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")
        return self

    def append(self, cell_id: str, index: int, trial: Any) -> None:
        entry: dict[str, Any] = {"cell_id": cell_id, "index": index}
        for name in ("inference", "end_to_end", "throughput"):
            m = getattr(trial, name)
            if m is not None:
                entry[name] = {"started_s": m.started_s, "other_cpu_fraction": m.other_cpu_fraction,
                               "samples_us": [round(s / 1e3, 3) for s in m.samples_ns]}  # fmt: skip
        self._fh.write(json.dumps(jsonable(entry)) + "\n")
        self._fh.flush()

    def __exit__(self, *exc: object) -> None:
        self._fh.close()
        if self.complete and exc[0] is None:
            self.path.unlink(missing_ok=True)


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """Bring an older record to the current schema (fields it could not have had are None).

    v3 -> v4: parity explains itself (bench.upgrade_parity): `parity.verdicts`,
    `noise_floor`, `oracle`, `batch_consistency`, `attribution`, `divergence`; a v3 cell was
    judged by allclose alone, and says so.
    v2 -> v3: cells are measured in interleaved trials; each timed block gained `center_us`
    (the trial-level estimate), `interval_scope`, `n_trials`, `trials`; records gained `kind`.
    A v2 block was one loop: its center is its median and its interval covers that loop.
    v1 -> v2: v2 added `mode`, `throughput`, `memory.gpu_mb`, `latency.*.other_cpu_fraction`
    and `parity.outputs[].tol_ratio`.
    """
    record = dict(record)
    record.setdefault("dims", {})  # written by every v2 bench since the dims axis existed
    if record["schema_version"] < 2:
        record.setdefault("mode", "latency")
        if isinstance(record.get("memory"), dict):
            record["memory"] = {"gpu_mb": None, **record["memory"]}
        for timed in (record.get("latency") or {}).values():
            if isinstance(timed, dict):
                timed.setdefault("other_cpu_fraction", None)
        for output in (record.get("parity") or {}).get("outputs") or []:
            output.setdefault("tol_ratio", None)
        record["schema_version"] = 2
    if record["schema_version"] < 3:
        record.setdefault("kind", "cell")
        for timed in [*(record.get("latency") or {}).values(), record.get("throughput")]:
            if isinstance(timed, dict) and "center_us" not in timed:
                timed.update(center_us=timed.get("p50_us"), interval_scope="loop", n_trials=1,
                             contended_trials=0, trial_spread=None)  # fmt: skip
        record["schema_version"] = 3
    if record["schema_version"] < 4:
        record["parity"] = upgrade_parity(record.get("parity"))
        record["schema_version"] = 4
    return record


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run, upgraded to the current schema; refuses newer schemas.

    A cell measured again (`--resume --retry-failed`) keeps its latest record.
    """
    latest: dict[str, dict[str, Any]] = {}
    for record in iter_records(run_dir / RESULTS_FILE):
        key = record.get("cell_id") or str(len(latest))
        latest.pop(key, None)
        latest[key] = upgrade_record(record)
    return list(latest.values())


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """The raw records of a results.jsonl, checked line by line; a damaged or foreign file is
    one `BenchError` naming the line. Only a torn last line (a run killed mid-write, no newline
    after it) is skipped."""
    if not path.exists():
        raise BenchError(f"no {RESULTS_FILE} in {path.parent}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BenchError(
            f"{path}: not UTF-8 text (byte {exc.start}): not a bench results file"
        ) from None
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines) and not text.endswith("\n"):
                continue  # torn by a kill mid-write; the next append cuts it
            raise BenchError(f"{path}:{number}: not JSON: a damaged results file") from None
        if not isinstance(record, dict):
            raise BenchError(f"{path}:{number}: a JSON {type(record).__name__}, not a record")
        version = record.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise BenchError(f"{path}:{number}: no integer schema_version: not a bench record")
        if version > SCHEMA_VERSION:
            raise BenchError(
                f"{path}:{number} has schema_version {version!r}; this bench reads "
                f"versions up to {SCHEMA_VERSION}: upgrade bench to read it"
            )
        if record.get("status") not in STATUSES:
            raise BenchError(f"{path}:{number}: status {record.get('status')!r}; valid: "
                             f"{', '.join(STATUSES)}")  # fmt: skip
        yield record


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise BenchError(f"missing {path}")
    return json.loads(path.read_text(encoding="utf-8"))
