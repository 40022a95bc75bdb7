"""The one reader of a run folder for `report` and `compare`: results.jsonl, env.json and
run.json, validated, with every problem turned into a caveat line or a one-line error.

The rules (results/README.md, "Damaged run folders"):
- a results.jsonl line that is not a valid record (not JSON, not an object, no schema
  version, an unknown status, wrong types in the fields reports read) is skipped, named on
  stderr with its line number, and counted in the reports as "N unreadable records";
- a record of a newer schema, or a file with no readable record at all, is refused; so is
  an empty one (0 bytes, blank lines, a torn line alone) unless a run is in progress in the
  folder (its records so far: none yet) or run.json marks it an empty shard (`sweep.cells` 0);
- env.json unreadable: the reports are written without the environment and say why; a field
  of the wrong type is left out and named;
- run.json unreadable: compare compares no settings and says why.
`bench run --resume` reads strictly instead (bench.resume): any of these refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.lock import run_in_progress
from bench.results import (
    ENV_FILE,
    RESULTS_FILE,
    RUN_FILE,
    Unreadable,
    latest_records,
    read_json,
    scan_records,
    torn_last_line,
    unfinished_trials,
)
from bench.validate_run import env_problems


@dataclass
class RunData:
    """What a run folder holds that a report or a comparison can use, and what it could not."""

    path: Path
    records: list[dict[str, Any]]
    env: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    unreadable: list[Unreadable] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)

    def problem_lines(self) -> list[str]:
        """One line per skipped results.jsonl line, for stderr."""
        where = self.path / RESULTS_FILE
        return [f"{where}:{u.line}: {u.reason}: skipped" for u in self.unreadable]


def unreadable_caveat(unreadable: list[Unreadable]) -> str:
    lines = ", ".join(str(u.line) for u in unreadable[:10]) + (
        ", ..." if len(unreadable) > 10 else ""
    )
    count = len(unreadable)
    return (f"{count} unreadable record{'s' if count > 1 else ''} in {RESULTS_FILE} "
            f"(line{'s' if count > 1 else ''} {lines}) skipped: not in these tables")  # fmt: skip


def _env(run_dir: Path, caveats: list[str]) -> dict[str, Any]:
    try:
        env = read_json(run_dir / ENV_FILE)
    except BenchError as exc:
        caveats.append(f"{ENV_FILE} unreadable ({exc}): environment not shown")
        return {}
    for problem in env_problems(env):
        caveats.append(f"{ENV_FILE}: {problem}: not shown")
        env.pop(problem.split(" ", 1)[0], None)
    return env


def _config(run_dir: Path, caveats: list[str]) -> dict[str, Any]:
    if not (run_dir / RUN_FILE).exists():
        return {}  # runs from before run.json existed
    try:
        config = read_json(run_dir / RUN_FILE).get("config")
    except BenchError as exc:
        caveats.append(f"{RUN_FILE} unreadable ({exc}): settings not compared")
        return {}
    if not isinstance(config, dict):
        caveats.append(f"{RUN_FILE}: no config object: settings not compared")
        return {}
    return config


def empty_shard(run_dir: Path) -> bool:
    """run.json says the folder is a shard whose part of the grid holds no cells (`bench run
    --shard I/N` with more shards than cells): its empty results.jsonl is its whole result."""
    try:
        sweep = read_json(run_dir / RUN_FILE).get("sweep")
    except BenchError:
        return False
    return isinstance(sweep, dict) and sweep.get("cells") == 0


def _refuse_empty(run_dir: Path) -> None:
    """An empty results.jsonl (0 bytes, blank lines, a torn line alone): nothing to read."""
    path = run_dir / RESULTS_FILE
    torn = torn_last_line(path)
    what = f"only a torn line {torn}" if torn else "empty"
    finish = (f"; finish it with: bench run --resume {run_dir}"
              if (run_dir / RUN_FILE).is_file() else "")  # fmt: skip
    unfinished = unfinished_trials(run_dir)
    if unfinished:  # trials were measured, no cell ended: say so, not "nothing"
        raise BenchError(f"{path} holds no record ({what}): {unfinished}")
    raise BenchError(f"{path} holds no record ({what}): nothing was measured (a run stopped "
                     f"before its first cell ended){finish}")  # fmt: skip


def read_run(run_dir: Path, with_config: bool = False) -> RunData:
    """Read a run folder leniently (see the module's rules); `BenchError` when nothing in it
    can be read, or it holds no record (unless a run is in progress in it, or it is an empty
    shard)."""
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir} is not a run folder")
    good, bad = scan_records(run_dir / RESULTS_FILE)
    if bad and not good:
        raise BenchError(f"{run_dir / RESULTS_FILE}:{bad[0].line}: {bad[0].reason} (and no "
                         "line of it is a readable record)")  # fmt: skip
    caveats: list[str] = []
    holder = run_in_progress(run_dir)
    if not good and not bad and not holder and not empty_shard(run_dir):
        _refuse_empty(run_dir)
    if holder:
        caveats.append(f"a run is in progress in this folder ({holder}): these are the records "
                       "written so far")  # fmt: skip
    if bad:
        caveats.append(unreadable_caveat(bad))
    torn = torn_last_line(run_dir / RESULTS_FILE) if good and not holder else None
    if torn:
        caveats.append(f"{RESULTS_FILE}:{torn}: a torn last line (a run killed while writing "
                       "it) is left out: that cell has no figure here; bench run --resume "
                       f"{run_dir} measures it")  # fmt: skip
    unfinished = None if holder else unfinished_trials(run_dir, (r for _, r in good))
    if unfinished:
        caveats.append(unfinished)
    env = _env(run_dir, caveats)
    config = _config(run_dir, caveats) if with_config else {}
    records = latest_records(r for _, r in good)
    return RunData(run_dir, records, env, config, bad, caveats)
