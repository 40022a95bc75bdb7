"""`bench explain RUN_DIR CELL_ID...`: explain cells of a finished run on demand.

Each cell is planned again from the run's saved configuration (the export comes back from the
cache, the inputs from the same seeds), its backend runs the parity inputs once more in a
checks worker, and the cell is judged with every check, the first-divergence search
included, whether it passed or not. The updated record is appended to results.jsonl (readers
keep a cell's latest record), the reports are rebuilt, and each cell's bug report is printed
and written to `explain/<cell>.md`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.checkjobs import OutputsJob, OutputsOutcome
from bench.errors import BenchError
from bench.grid import Cell
from bench.lock import RunLock
from bench.record import CellRecord
from bench.results import ResultsWriter, read_records
from bench.resume import resume_state


def check_explain_cells(cell_ids: Sequence[str], cells: Sequence[Cell], resumed: bool) -> None:
    """A one-line error for --explain-cell ids that are not cells of this run."""
    if resumed:
        raise BenchError("--explain-cell with --resume: explain a cell of a run folder with "
                         "`bench explain RUN_DIR CELL_ID`")  # fmt: skip
    _unknown(cell_ids, [c.cell_id for c in cells])


def _unknown(cell_ids: Sequence[str], valid: Sequence[str]) -> None:
    unknown = [c for c in cell_ids if c not in valid]
    if unknown:
        shown = ", ".join(valid[:8]) + (f", ... ({len(valid)} cells)" if len(valid) > 8 else "")
        raise BenchError(f"cell {unknown[0]!r} is not a cell of this run; valid: {shown}")


def _safe(cell_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in cell_id)


def cmd_explain(run_dir: Path, cell_ids: list[str]) -> int:
    """Explain `cell_ids` of the run in `run_dir`, holding its lock."""
    if not cell_ids:
        raise BenchError("explain: name at least one CELL_ID (the cell_id of results.jsonl)")
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir} is not a run folder (no such folder)")
    with RunLock(run_dir) as lock:  # the same lock as bench run: one writer per folder
        lock.acquire(["bench", "explain", str(run_dir), *cell_ids])
        return _explain(run_dir, cell_ids)


def _explain(run_dir: Path, cell_ids: list[str]) -> int:
    from bench.report import write_reports
    from bench.report.bugreport import bug_report
    from bench.runner import Runner

    # The checks of --resume: a folder it would not continue is not written to either.
    state = resume_state(run_dir, retry_failed=False, who="explain")
    config, env = state.config, state.env
    records = {r["cell_id"]: r for _, r in state.records}
    runner = Runner(config, run_dir, state.run_id)
    cells = {c.cell_id: c for c in runner.cells()}
    _unknown(cell_ids, list(cells))
    for cell_id in cell_ids:
        status = (records.get(cell_id) or {}).get("status")
        if status not in ("ok", "parity_failed"):
            raise BenchError(f"{cell_id}: status {status or 'not run'}; only cells that ran "
                             "(ok or parity_failed) have outputs to explain")  # fmt: skip
    writer = ResultsWriter(run_dir)
    out_dir = run_dir / "explain"
    out_dir.mkdir(exist_ok=True)
    try:
        for cell_id in cell_ids:
            cell = cells[cell_id]
            planned = runner.plan(cell)
            if isinstance(planned, CellRecord):
                raise BenchError(f"{cell_id}: cannot be run again: {planned.reason}")
            _, _, pairs = runner._pending.pop(cell_id)  # the plan's reference pairs
            job = planned.job
            print(f"explaining {cell_id}")
            reply = runner.checks._checks(cell, OutputsJob(job.backend_target, job.load,
                                                           job.inputs))  # fmt: skip
            if not isinstance(reply, OutputsOutcome):
                raise BenchError(f"{cell_id}: running the backend again failed: {reply}")
            record = CellRecord.from_json(records[cell_id], where=cell_id)
            runner.checks.judge(record, cell, job, pairs, reply.outputs, explain=True)
            writer.append(record)
            text = bug_report(record.to_json(), env, str(run_dir))
            (out_dir / f"{_safe(cell_id)}.md").write_text(text + "\n", encoding="utf-8")
            print(text)
            print()
    finally:
        writer.close()
        runner.scheduler.close()
    write_reports(run_dir, read_records(run_dir), env)
    print(f"updated {run_dir / 'results.jsonl'} and the reports; bug reports in {out_dir}")
    return 0
