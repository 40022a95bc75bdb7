"""results.jsonl: one JSON record per cell, appended and flushed as each cell finishes."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import SCHEMA_VERSION
from bench.diskio import WriteFailed, append_whole, open_append, write_atomic
from bench.errors import BenchError
from bench.record import CLEAN_STATUSES, STATUSES, CellRecord, jsonable
from bench.upgrade_parity import upgrade_parity
from bench.validate import record_problem, restore_infinities
from bench.validate_profile import profile_problem

__all__ = ["CLEAN_STATUSES", "STATUSES", "ResultsWriter", "WriteFailed", "read_records",
           "upgrade_record", "write_atomic"]  # fmt: skip

RESULTS_FILE = "results.jsonl"
ENV_FILE = "env.json"
RUN_FILE = "run.json"
TRIALS_FILE = "trials.jsonl"
#: Trials a stopped run measured for cells that never got a record: moved here when the run
#: is resumed (the resumed cells are measured again, whole, so a cell's trials come from
#: one session), kept for good.
STOPPED_TRIALS_FILE = "stopped-trials.jsonl"


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line left half-written by a killed run, so appends start on a fresh line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        last = data[data.rfind(b"\n") + 1 :]
        try:
            json.loads(last)
            torn = False
        except (ValueError, RecursionError):
            torn = True
        try:
            with open(path, "r+b") as fh:
                if torn:  # cut it
                    fh.truncate(data.rfind(b"\n") + 1)
                else:  # whole, only its newline missing: keep it
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\n")
        except OSError as exc:
            raise WriteFailed(path, exc) from None


class ResultsWriter:
    """Appends records to results.jsonl; each is on disk (fsync) before the next cell starts,
    whole or not at all."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / RESULTS_FILE
        _drop_torn_tail(self.path)
        self._fd = open_append(self.path)

    def append(self, record: CellRecord) -> None:
        line = json.dumps(record.to_json(), allow_nan=False) + "\n"
        append_whole(self._fd, self.path, line.encode("utf-8"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class TrialJournal:
    """trials.jsonl: every trial's raw samples, flushed as it ends, while its cell has no
    record yet. A run that is stopped or killed keeps it (nothing measured is lost); when it
    is resumed, what it holds moves to `STOPPED_TRIALS_FILE`; a run whose every cell got its
    record removes it, the records holding the same samples."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.complete = False

    def __enter__(self) -> TrialJournal:
        _drop_torn_tail(self.path)
        _keep_stopped_trials(self.path, self.path.with_name(STOPPED_TRIALS_FILE))
        self._fd = open_append(self.path)
        return self

    def append(self, cell_id: str, index: int, trial: Any) -> None:
        entry: dict[str, Any] = {"cell_id": cell_id, "index": index}
        for name in ("inference", "end_to_end", "throughput"):
            m = getattr(trial, name)
            if m is not None:
                entry[name] = {"started_s": m.started_s, "other_cpu_fraction": m.other_cpu_fraction,
                               "samples_us": [round(s / 1e3, 3) for s in m.samples_ns]}  # fmt: skip
        line = json.dumps(jsonable(entry)) + "\n"
        append_whole(self._fd, self.path, line.encode("utf-8"), sync=False)

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)
        if self.complete and exc[0] is None:
            self.path.unlink(missing_ok=True)


def _recorded_ids(run_dir: Path) -> set[str]:
    try:
        good, _ = scan_records(run_dir / RESULTS_FILE)
    except BenchError:
        return set()
    return {str(r.get("cell_id")) for _, r in good}


def _trials_without_record(journal: Path, recorded: set[str] | None = None) -> list[bytes]:
    """The journal's lines whose cell has no record (a cell that got its record holds the
    same samples in it); `recorded`: the cell ids with a record, when the caller has read
    them already."""
    if recorded is None:
        recorded = _recorded_ids(journal.parent)
    kept = []
    with open(journal, "rb") as fh:
        for line in fh:
            try:
                cell_id = json.loads(line).get("cell_id")
            except (ValueError, AttributeError, RecursionError):
                continue
            if isinstance(cell_id, str) and cell_id not in recorded:
                kept.append(line)
    return kept


def unfinished_trials(run_dir: Path, records: Iterable[dict[str, Any]] | None = None) -> str | None:
    """A line for the reports when the journal holds trials of cells without a record (a run
    stopped or killed): how many, and the command that measures those cells. `records`: the
    run's records, when the caller holds them (else results.jsonl is read)."""
    recorded = None if records is None else {str(r.get("cell_id")) for r in records}
    try:
        count = len(_trials_without_record(run_dir / TRIALS_FILE, recorded))
    except OSError:
        return None
    if not count:
        return None
    return (f"{count} trials were measured for cells that have no record yet (the run stopped "
            f"first; they are kept in {TRIALS_FILE}): bench run --resume {run_dir} measures "
            "those cells")  # fmt: skip


def _keep_stopped_trials(journal: Path, kept: Path) -> None:
    """Move an earlier session's trials of cells without a record to `kept` (appended)."""
    if not journal.exists():
        return
    lines = _trials_without_record(journal)
    if lines:
        fd = open_append(kept)
        try:
            append_whole(fd, kept, b"".join(lines))
        finally:
            os.close(fd)
    journal.unlink()


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """Bring an older record to the current schema (fields it could not have had are None).

    v4 -> v5: `target`, `host` and `node_id` (who measured the cell: the Ray executor, shards
    kept through `bench merge`): None, the run's host being env.json's; `profile` (`--profile`:
    per-op-type times, top nodes and findings) is null.

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
    if record["schema_version"] < 5:  # measured here, before targets, executors, profiles
        record.update(target=None, host=None, node_id=None, schema_version=5)
        record.setdefault("profile", None)
    return record


@dataclass(frozen=True)
class Unreadable:
    """A line of results.jsonl that is not a record bench can read, and why."""

    line: int
    reason: str


def _parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) or (None, why it is not one). A newer schema raises `BenchError`."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start}): not a bench results file"
    except (ValueError, RecursionError):
        return None, "not JSON: a damaged results file"
    if not isinstance(record, dict):
        return None, f"a JSON {type(record).__name__}, not a record"
    version = record.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        return None, "no integer schema_version: not a bench record"
    if record.get("status") not in STATUSES:
        return None, f"status {record.get('status')!r}; valid: {', '.join(STATUSES)}"
    problem = record_problem(record) or profile_problem(record.get("profile"))
    if problem:
        return None, problem
    restore_infinities(record)
    return record, None


def scan_records(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[Unreadable]]:
    """Every line of a results.jsonl: (line number, raw record) for those that are whole,
    valid records, and the lines that are not. A torn last line (a run killed mid-write, no
    newline after it) is neither. A record of a newer schema than this bench reads is a
    `BenchError`: a newer bench wrote the folder, and reading it as this one would mislead."""
    if not path.exists():
        raise BenchError(f"no {RESULTS_FILE} in {path.parent}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BenchError(f"cannot read {path} ({exc.strerror or exc})") from None
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    good: list[tuple[int, dict[str, Any]]] = []
    bad: list[Unreadable] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        record, problem = _parse_line(raw)
        if record is None:
            torn = number == len(lines) and not data.endswith(b"\n")
            if not (torn and problem and problem.startswith("not JSON")):
                bad.append(Unreadable(number, problem or "unreadable"))
            continue
        if record["schema_version"] > SCHEMA_VERSION:
            raise BenchError(
                f"{path}:{number} has schema_version {record['schema_version']!r}; this bench "
                f"reads versions up to {SCHEMA_VERSION}: upgrade bench to read it"
            )
        good.append((number, record))
    return good, bad


def torn_last_line(path: Path) -> int | None:
    """The number of a torn last line (no newline after it, not JSON: a run killed mid-write),
    which `scan_records` leaves out; None when the file ends whole or is missing."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data or data.endswith(b"\n"):
        return None
    last = data[data.rfind(b"\n") + 1 :]
    try:
        json.loads(last)
    except (ValueError, RecursionError):
        return data.count(b"\n") + 1
    return None


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """The raw records of a results.jsonl, checked line by line; a damaged or foreign file is
    one `BenchError` naming the first bad line. Only a torn last line is skipped."""
    good, bad = scan_records(path)
    if bad:
        raise BenchError(f"{path}:{bad[0].line}: {bad[0].reason}")
    for _, record in good:
        yield record


def latest_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records upgraded to the current schema; a cell measured again (`--resume
    --retry-failed`) keeps its latest record."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        key = record.get("cell_id") or str(len(latest))
        latest.pop(key, None)
        latest[key] = upgrade_record(record)
    return list(latest.values())


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run, upgraded to the current schema; any bad line is a `BenchError`
    naming it (`bench.rundata` reads leniently for reports)."""
    return latest_records(iter_records(run_dir / RESULTS_FILE))


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `path` whole or not at all: a temporary file beside it, fsync, then rename."""
    text = json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n"
    write_atomic({path: text.encode("utf-8")})


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file (env.json, run.json); anything else is a one-line `BenchError`."""
    if not path.exists():
        raise BenchError(f"missing {path}")
    try:
        value = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_no_constant,
                           parse_float=_finite)  # fmt: skip
    except OSError as exc:
        raise BenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise BenchError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise BenchError(f"{path}: not JSON ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(value, dict):
        raise BenchError(f"{path}: a JSON {type(value).__name__}, not an object")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number bench writes")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is too large")
    return value
