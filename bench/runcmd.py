"""`bench run`: claim the run folder, measure, then write the reports.

Exit status (README, "Exit status"): 0 every cell ok or skipped; 1 a cell failed (unless
--allow-failures), or a record or report could not be written after measuring started (the
records on disk stay whole; the message says how to finish); 2 a usage error or a refused
folder, before anything was measured or written; 128 + the signal that stopped the run
(130 SIGINT, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from bench.config import RunConfig
from bench.diskio import WriteFailed
from bench.errors import BenchError
from bench.lock import RunLock
from bench.parser import FlagParser
from bench.results import (
    CLEAN_STATUSES,
    ENV_FILE,
    RUN_FILE,
    ResultsWriter,
    unfinished_trials,
    write_json,
)
from bench.resume import check_grid, check_resume_flags, resume_state
from bench.rundir import new_run_dir
from bench.stop import StopRequest
from bench.targets import check_executor


def _claim(
    args: argparse.Namespace, argv: list[str], run_parser: FlagParser
) -> tuple[Path, RunConfig, str, dict, set[str], RunLock]:
    """The run folder, locked, with the config, run id, env and the cells already done;
    the resume checks all pass before this returns. Nothing is written yet but run.json."""
    from bench.control import control_ids
    from bench.envinfo import collect_env
    from bench.runner import Runner

    command = ["bench", *argv]
    if args.resume:
        check_resume_flags(run_parser, argv)
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise BenchError(f"--resume: {run_dir} is not a run folder (no such folder)")
        lock = RunLock(run_dir)
        try:
            lock.acquire(command)
        except BenchError as exc:
            raise BenchError(f"--resume: {exc}") from None
        try:
            state = resume_state(run_dir, args.retry_failed)
            ids = {c.cell_id for c in Runner(state.config, run_dir, state.run_id).cells()}
            check_grid(run_dir, state.records,
                       ids | control_ids(state.config.targets, state.config.control_workload))  # fmt: skip
            config = state.config
            if args.ray_address is not None:  # the same cluster, reached at another address
                check_executor(config.executor, args.ray_address, list(config.targets))
                config = replace(config, ray_address=args.ray_address)
        except BaseException:
            lock.release()
            raise
        env = state.env
        env.setdefault("resumed_with", []).append(command)
        return run_dir, config, state.run_id, env, state.finished, lock
    if args.retry_failed:
        raise BenchError("--retry-failed goes with --resume RUN_DIR")
    from bench.options import config_from_args

    config = config_from_args(args)
    run_dir, run_id, lock = new_run_dir(args.out, command)
    try:
        write_json(run_dir / RUN_FILE, run_file(run_id, config))
    except WriteFailed as exc:
        lock.release()
        raise BenchError(f"--out: {exc}; nothing was measured") from None
    return run_dir, config, run_id, collect_env(command, config.cpus, config.allocator), set(), lock


def run_file(run_id: str, config: RunConfig) -> dict:
    """run.json: the run id and configuration; a shard also names its sweep and place."""
    saved = config.to_record()
    data: dict = {"run_id": run_id, "config": saved}
    if config.shard is not None:
        from bench.shard import sweep_id

        index, count = config.shard
        data["sweep"] = {"id": sweep_id(saved), "shard": index, "shards": count}
    return data


def cmd_run(args: argparse.Namespace, argv: list[str], run_parser: FlagParser) -> int:
    """`bench run` and `bench run --resume`, signals handled from the first moment."""
    return run_measured(args, argv, run_parser)[0]


def run_measured(
    args: argparse.Namespace, argv: list[str], run_parser: FlagParser
) -> tuple[int, Path | None]:
    """`cmd_run`, also giving the run folder (None when stopped before it was claimed)."""
    claimed: list[Path] = []
    with StopRequest() as stop:
        try:
            status = _run(args, argv, run_parser, stop, claimed)
        except KeyboardInterrupt:  # a second signal before measuring began
            print("\nstopped now", file=sys.stderr)
            status = stop.exit_status
    return status, (claimed[0] if claimed else None)


def _run(args: argparse.Namespace, argv: list[str], run_parser: FlagParser,
         stop: StopRequest, claimed: list[Path]) -> int:  # fmt: skip
    from bench.control import control_ids
    from bench.explain_cmd import check_explain_cells
    from bench.record import CellRecord
    from bench.runner import Runner

    run_dir, config, run_id, env, finished, lock = _claim(args, argv, run_parser)
    claimed.append(run_dir)
    with lock:
        try:
            write_json(run_dir / ENV_FILE, env)
        except WriteFailed as exc:
            raise BenchError(f"{exc}; nothing was measured") from None
        runner = Runner(config, run_dir, run_id)
        all_cells = runner.cells()
        check_explain_cells(config.explain_cells, all_cells, resumed=False)
        # A resumed folder whose cells are done but whose control record is missing (killed
        # while writing it) measures the control alone; else it is measured again with the
        # cells left to run.
        controls = control_ids(config.targets, config.control_workload)
        missing = config.control and bool(finished - controls) and not controls <= finished
        if config.control:
            finished -= controls
        cells = [c for c in all_cells if c.cell_id not in finished]
        if config.shard is not None and not all_cells:  # more shards than cells
            index, count = config.shard
            print(f"bench: shard {index}/{count} holds no cells (the grid has "
                  f"{len(runner.cells(whole=True))} cells for {count} shards); nothing to "
                  f"measure, the folder records an empty shard: {run_dir}")  # fmt: skip
            ResultsWriter(run_dir).close()
            saved = run_file(run_id, config)
            saved["sweep"]["cells"] = 0  # an empty results.jsonl is this shard's whole result
            write_json(run_dir / RUN_FILE, saved)
            return _finish(run_dir, env, args, 0, False, "")
        print(f"bench: {len(cells)} cells -> {run_dir}"
              + (f" ({len(all_cells) - len(cells)} already done)" if finished else "")
              + ("; the control workload's record is missing: measuring it" if missing else ""))  # fmt: skip
        resume = f"bench run --resume {run_dir}"
        stop.resume_hint = f"; finish with: {resume}"
        ran: list[CellRecord] = []
        try:
            writer = ResultsWriter(run_dir)
            try:
                ran = runner.run(writer, cells, stop, control_missing=missing)
            finally:
                writer.close()
        except KeyboardInterrupt:  # a second signal: the job in flight is lost, no more
            print("\nstopped now", file=sys.stderr)
            stop.requested = True
        except WriteFailed as exc:
            print(f"bench: error: {exc}; the records before it are whole on disk; make "
                  f"room, then finish with: {resume}", file=sys.stderr)  # fmt: skip
            return 1
        stop.measured()
        # A stop that came after the last cell's record stopped nothing: the run is whole.
        stopped = len([r for r in ran if r.kind == "cell"]) < len(cells)
        try:
            status = _finish(run_dir, env, args, len(all_cells), stopped, resume)
        except KeyboardInterrupt:
            print(f"\nstopped: reports not written; finish with: {resume}", file=sys.stderr)
            return stop.exit_status
    if stopped:
        return stop.exit_status if stop.requested else 130
    return status


def _finish(
    run_dir: Path, env: dict, args: argparse.Namespace, total: int, stopped: bool, resume: str
) -> int:
    """Write the reports and print the table; the exit status of a run that was not stopped."""
    from bench.results import read_records

    records = read_records(run_dir)
    cell_records = [r for r in records if r.get("kind", "cell") == "cell"]
    bad = sum(r["status"] not in CLEAN_STATUSES for r in cell_records)
    status = 1 if bad and not args.allow_failures else 0
    later = f"bench report {run_dir}"
    try:
        from bench.report import terminal_table, write_reports
    except ImportError as exc:
        print(f"bench: reports not written: {exc.name or exc} is not installed; the records "
              f"are in {run_dir}; install bench's dependencies, then: {later}", file=sys.stderr)  # fmt: skip
        status = 1
    else:
        print()
        print(terminal_table(records))
        print()
        print(f"run folder: {run_dir}")
        try:
            unfinished = unfinished_trials(run_dir, records)
            caveats = [unfinished] if unfinished else []
            for path in write_reports(run_dir, records, env, png=args.png, caveats=caveats):
                print(f"  {path}")
        except (WriteFailed, BenchError) as exc:
            print(f"bench: error: reports not written: {exc}; the records are whole in "
                  f"{run_dir}; then: {later}", file=sys.stderr)  # fmt: skip
            status = 1
    if stopped:
        print(f"stopped with {len(cell_records)} of {total} cells done; finish with: {resume}",
              file=sys.stderr)  # fmt: skip
    elif bad:
        print(f"{bad} cell(s) failed, crashed, timed out or failed parity", file=sys.stderr)
    return status
