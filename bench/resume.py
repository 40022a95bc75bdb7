"""`bench run --resume RUN_DIR`: every check before anything runs or is written.

A resume adds records to a folder that already holds some: it refuses (one line, exit 2)
whatever would mix another configuration, another run or a newer bench into it:
- flags that would change the configuration (only --resume, --retry-failed, --png and
  --allow-failures go with it);
- a run.json that is not a JSON object with a run id and a config bench can rebuild;
- an env.json that is not a JSON object of the expected types;
- any results.jsonl line that is not a valid record (a torn last line excepted: it is cut),
  a record of a newer schema, a record of another run (run_id), or of a cell outside this
  configuration's grid (the folder holds another configuration).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import RunConfig
from bench.errors import BenchError
from bench.options import check_saved_config
from bench.parser import FlagParser
from bench.results import (
    CLEAN_STATUSES,
    ENV_FILE,
    RESULTS_FILE,
    RUN_FILE,
    TRIALS_FILE,
    latest_records,
    read_json,
    scan_records,
)
from bench.validate_run import config_problem, env_problems

#: Flags that may go with --resume: they change neither the grid nor how a cell is measured
#: (--ray-address: the same Ray cluster may have another address now).
RESUME_FLAGS = ("resume", "retry_failed", "png", "allow_failures", "ray_address")


def check_resume_flags(run_parser: FlagParser, argv: list[str]) -> None:
    """Refuse flags given with --resume that would change the saved configuration."""
    given = run_parser.given(argv)
    changing = [d for d in given if d not in RESUME_FLAGS]
    if changing:
        names = ", ".join(run_parser.flags[d].option_strings[0] for d in changing)
        raise BenchError(f"--resume runs with the folder's saved configuration; these flags "
                         f"would change it: {names} (start a new run with them instead)")  # fmt: skip


@dataclass
class ResumeState:
    """What a resumable run folder holds, checked."""

    config: RunConfig
    run_id: str
    env: dict[str, Any]
    records: list[tuple[int, dict[str, Any]]]  # (line number, raw record)
    finished: set[str]


def _saved_run(run_dir: Path, who: str) -> tuple[RunConfig, str]:
    if not (run_dir / RUN_FILE).is_file():
        why = "is not a file" if (run_dir / RUN_FILE).exists() else "is missing"
        raise BenchError(f"{who}: {run_dir} is not a run folder ({RUN_FILE} {why})")
    saved = read_json(run_dir / RUN_FILE)
    run_id, config = saved.get("run_id"), saved.get("config")
    if not isinstance(run_id, str) or not run_id:
        raise BenchError(f"{who}: {run_dir / RUN_FILE} has no run_id text")
    if not isinstance(config, dict):
        raise BenchError(f"{who}: {run_dir / RUN_FILE} has no config object")
    problem = config_problem(config)
    if problem:
        raise BenchError(f"{who}: {run_dir / RUN_FILE}: {problem}")
    try:
        restored = RunConfig.from_record(config)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise BenchError(f"{who}: {run_dir / RUN_FILE}: not a configuration this bench can "
                         f"run ({type(exc).__name__}: {exc})") from None  # fmt: skip
    try:
        check_saved_config(restored)
    except BenchError as exc:
        raise BenchError(f"{who}: {run_dir / RUN_FILE}: {exc}") from None
    return restored, run_id


def resume_state(run_dir: Path, retry_failed: bool, who: str = "--resume") -> ResumeState:
    """Read and check a run folder to resume; `BenchError` on anything it would not trust,
    its line starting with `who` (the flag or command that asked)."""
    if not run_dir.is_dir():
        raise BenchError(f"{who}: {run_dir} is not a run folder (no such folder)")
    config, run_id = _saved_run(run_dir, who)
    env = read_json(run_dir / ENV_FILE)
    problems = env_problems(env)
    if problems:
        raise BenchError(f"{who}: {run_dir / ENV_FILE}: {problems[0]}")
    journal = run_dir / TRIALS_FILE
    if journal.exists():  # read and moved aside by the run: it must be a file it can use
        try:
            with open(journal, "r+b"):
                pass
        except OSError as exc:
            raise BenchError(
                f"{who}: {journal}: cannot be read and written ({exc.strerror})"
            ) from None
    records: list[tuple[int, dict[str, Any]]] = []
    path = run_dir / RESULTS_FILE
    if path.exists():  # none yet: a run stopped before its first record
        records, bad = scan_records(path)
        if bad:
            raise BenchError(f"{who}: {path}:{bad[0].line}: {bad[0].reason}; a damaged "
                             "results file is not measured on top of (bench report shows "
                             "the records that are readable)")  # fmt: skip
    for number, record in records:
        if record.get("run_id") != run_id:
            raise BenchError(f"{who}: {path}:{number} is a record of run "
                             f"{record.get('run_id')!r}, not of this folder's run {run_id!r}")  # fmt: skip
    keep = CLEAN_STATUSES if retry_failed else None
    done = latest_records(r for _, r in records)
    finished = {r["cell_id"] for r in done if keep is None or r["status"] in keep}
    return ResumeState(config, run_id, env, records, finished)


def check_grid(
    run_dir: Path, records: Iterable[tuple[int, dict[str, Any]]], cell_ids: set[str]
) -> None:
    """Refuse a folder holding a record of a cell outside the saved configuration's grid."""
    for number, record in records:
        if record.get("cell_id") not in cell_ids:
            raise BenchError(f"--resume: {run_dir / RESULTS_FILE}:{number} records cell "
                             f"{record.get('cell_id')!r}, which is not in the grid of "
                             f"{run_dir / RUN_FILE}: the folder holds another configuration")  # fmt: skip
