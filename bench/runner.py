"""One sweep: plan every cell (exports and references in the parent), measure them in
workers with interleaved trials (bench.schedule), judge each (bench.judge), write a record."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bench.artifacts import Artifacts, ReferenceFailed
from bench.backends import backend_entry, load_backend_class
from bench.backends.base import LoadSpec
from bench.checks import ParityChecks
from bench.config import RunConfig
from bench.control import SHARES, TARGETS, control_id
from bench.envinfo import cpu_governor
from bench.errors import meaningful_line
from bench.grid import Cell, expand_grid
from bench.inputflags import batch_text
from bench.jobs import LoadJob
from bench.judge import stability_warnings, timing_block
from bench.models import display_name
from bench.profilepass import profile_block
from bench.record import CellRecord
from bench.refworker import ReferenceWorker
from bench.results import TRIALS_FILE, ResultsWriter, TrialJournal
from bench.schedule import Measured, Planned, Scheduler
from bench.shard import assign, cell_cost, input_elements
from bench.stop import StopRequest
from bench.timing import now

if TYPE_CHECKING:
    from bench.rayexec import RayExecutor


class Runner:
    """Runs the cells of one `RunConfig`, writing one record per cell."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        run_id: str,
        progress: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.run_id = run_id
        self.progress = progress
        self.entries = {name: backend_entry(name) for name in config.backends}
        self.classes = {name: load_backend_class(e.target) for name, e in self.entries.items()}
        self.governor = cpu_governor()
        self.host = socket.gethostname()  # the measuring machine's, unless Ray says another
        self.log_dir = run_dir / "logs"
        self.scheduler = Scheduler(
            self.log_dir, config.timing, config.seed, config.cell_timeout,
            config.times_end_to_end, config.cpus, progress, config.allocator,
        )  # fmt: skip
        self.reference = ReferenceWorker(self.scheduler, config.cell_timeout)
        self.artifacts = Artifacts(
            dict(config.file_dims), Path(config.cache_dir), config.parity_seeds,
            self.reference.reference, self.reference.prep, progress, config.int_range_map(),
        )  # fmt: skip
        self.checks = ParityChecks(config, self.artifacts, self.scheduler.worker,
                                   self.scheduler.forget, self.classes)  # fmt: skip
        self.run_start = now()
        self._ray: RayExecutor | None = None
        #: Planned cells awaiting their measurement: the cell, its record fields, references.
        self._pending: dict[str, tuple[Cell, dict[str, object], list]] = {}

    def cells(self, twins: tuple[str, ...] = (), whole: bool = False) -> list[Cell]:
        """The grid, or this run's shard of it unless `whole`; with `twins`, every cell once
        per twin label (`bench noise`)."""
        specs = {m: self.artifacts.spec(m) for m in self.config.models}
        dims = {m: s.dynamic_dims() for m, s in specs.items()}
        files = frozenset(m for m, s in specs.items() if s.onnx_path)
        names = {m: s.name for m, s in specs.items()}
        taken = list(names.values())
        for ref, name in names.items():
            if taken.count(name) > 1:  # two models share a name: cell ids use what was given
                names[ref] = display_name(ref)
        consumes = {n: c.consumes for n, c in self.classes.items()}
        grid = expand_grid(self.config, consumes, dims, files, names)
        if self.config.targets:  # each cell once per hardware target (bench.rayexec)
            grid = [Cell(**{**c.__dict__, "target": t}) for c in grid for t in self.config.targets]
        if self.config.shard is not None and not whole:
            index, count = self.config.shard
            grid = assign(grid, self.expected_cost, count)[index - 1]
        return [Cell(**{**c.__dict__, "twin": t}) for c in grid for t in twins] if twins else grid

    def expected_cost(self, cell: Cell) -> int:
        """The cell's expected milliseconds, as `bench.shard` balances shards by."""
        spec, cls = self.artifacts.spec(cell.model), self.classes[cell.backend]
        runs = cell.precision in cls.precisions and spec.fixed_batch() in (None, cell.batch_size)
        return cell_cost(input_elements(spec, cell), cls.consumes, self.config.timing,
                         self.config.times_end_to_end, runs)  # fmt: skip

    # -- records ----------------------------------------------------------------------------

    def head(self, cell: Cell, status: str, **fields: object) -> CellRecord:
        """A record of `cell` with the fields every record has, whatever happened."""
        return CellRecord(
            run_id=self.run_id, cell_id=cell.cell_id, model=cell.model_name,
            model_source=cell.model if cell.model != cell.model_name else None,
            backend=cell.backend, device=self.classes[cell.backend].device, status=status,
            exporter=cell.exporter, opset_requested=cell.opset, batch_size=cell.batch_size,
            dims=dict(cell.dims), precision=cell.precision, mode=self.config.mode,
            twin=cell.twin, target=cell.target, host=self.host, **fields,  # type: ignore[arg-type]
        )  # fmt: skip

    def plan(self, cell: Cell) -> Planned | CellRecord:
        """The load job of `cell`, or its final record when it cannot be measured."""
        backend_cls = self.classes[cell.backend]
        if cell.precision not in backend_cls.precisions:
            reason = f"{cell.backend} supports precisions {', '.join(backend_cls.precisions)}"
            return self.head(cell, "skipped", reason=reason)
        spec = self.artifacts.spec(cell.model)
        if spec.fixed_batch() not in (None, cell.batch_size):  # it would run another batch
            return self.head(cell, "skipped", reason=f"{spec.name}: {batch_text(spec)}")
        tolerance = self.config.tolerance_for(cell.model, spec.tolerance(cell.precision))
        fields: dict[str, object] = {
            "reference": self.artifacts.reference_name(cell.model),
            "tolerance": {"rtol": tolerance.rtol, "atol": tolerance.atol},
        }
        try:  # first: a forward that outlasts --cell-timeout then costs no export
            pairs = self.artifacts.references(cell.model, cell.sizes)
        except ReferenceFailed as exc:
            return self.head(cell, exc.status, reason=str(exc), **fields)
        source = cell.model
        if backend_cls.consumes == "onnx":
            assert cell.exporter is not None
            export = self.artifacts.export(cell.model, cell.exporter, cell.opset)
            fields.update(export=export.to_record(), exporter_used=export.exporter_used,
                          opset_actual=export.opset_actual)  # fmt: skip
            if not export.ok or not export.path:
                tried = f"{export.fallback_reason}; then " if export.fallback_reason else ""
                return self.head(cell, "export_failed", reason=tried + str(export.error),
                                 **fields)  # fmt: skip
            source = export.path
        load = LoadSpec(
            source=source, precision=cell.precision,
            input_shapes={n: a.shape for n, a in pairs[0][0].items()},
            threads=self.config.threads, options=self.config.options_for(cell.backend),
            mode=self.config.mode, output_names=tuple(spec.output_names),
        )  # fmt: skip
        job = LoadJob(cell.cell_id, self.entries[cell.backend].target, load,
                      [inputs for inputs, _ in pairs], self.config.mode, self.config.requests)  # fmt: skip
        self._pending[cell.cell_id] = (cell, fields, pairs)
        return Planned(cell.cell_id, cell.backend, job,
                       getattr(backend_cls, "fresh_worker", False), cell.target,
                       self.config.profile_runs)  # fmt: skip

    def judge(self, measured: Measured) -> CellRecord:
        """The record of a measured cell: timing statistics, warnings, parity."""
        if measured.planned.backend == "control":
            return self._control_record(measured)
        record = self._judge_cell(measured)
        record.host, record.node_id = measured.host or self.host, measured.node_id
        return record

    def _judge_cell(self, measured: Measured) -> CellRecord:
        cell, fields, pairs = self._pending.pop(measured.planned.cell_id)
        if measured.failure:
            failure = measured.failure
            reason = failure.reason
            if failure.status == "skipped":
                reason += f" (install: {self.entries[cell.backend].install_hint})"
            return self.head(cell, failure.status, reason=reason,
                             traceback=failure.traceback, **fields)  # fmt: skip
        load, unload = measured.load, measured.unload
        assert load is not None
        record = self.head(
            cell, "ok", settings=load.settings, trial_group=measured.group,
            cold_start={"load_s": load.load_s, "first_run_ms": load.first_run_ms},
            memory={"peak_rss_mb": unload.peak_rss_mb if unload else None,
                    "load_rss_delta_mb": load.rss_delta_mb,
                    "gpu_mb": unload.gpu_memory_mb if unload else None},
            worker_imported_torch=unload.torch_imported if unload else None, **fields,
        )  # fmt: skip
        if measured.throughput:
            per_round = (load.inferences_per_round or 1) * cell.batch_size
            block = timing_block(measured.throughput, per_round, self.run_start)
            block.update(requests=load.requests, inferences_per_round=load.inferences_per_round,
                         items_per_s_wall=block["n"] * per_round / max(block["wall_s"], 1e-9))  # fmt: skip
            record.throughput = block
            record.settings = {**load.settings, "requests": str(load.requests)}
        else:
            block = timing_block(measured.inference, cell.batch_size, self.run_start)
            e2e = measured.end_to_end
            record.latency = {"inference": block, "end_to_end":
                              timing_block(e2e, cell.batch_size, self.run_start) if e2e else None}  # fmt: skip
        record.warnings = stability_warnings(block, self.governor)
        if measured.reloads:
            record.warnings.append(f"reloaded {measured.reloads}x after its worker was lost")
        if measured.planned.profile_runs:  # --profile: the pass ran after the trials
            unprofiled = block["center_us"] if record.latency else None
            record.profile = profile_block(measured.profile, cell.cell_id, cell.precision,
                                           record.device, unprofiled, self.run_dir)  # fmt: skip
        # both verdicts, batch consistency, attribution and divergence (bench.checks)
        self.checks.judge(record, cell, measured.planned.job, pairs, load.outputs)
        return record

    def _control_record(self, measured: Measured) -> CellRecord:
        base = {"run_id": self.run_id, "cell_id": measured.planned.cell_id, "model": "control",
                "backend": "control", "device": "cpu", "kind": "control", "exporter": None,
                "host": measured.host or self.host, "node_id": measured.node_id,
                "target": measured.planned.target}  # fmt: skip
        if measured.failure or measured.load is None:
            reason = measured.failure.reason if measured.failure else "not measured"
            return CellRecord(status="failed", reason=reason, **base)  # type: ignore[arg-type]
        block = timing_block(measured.inference, 1, self.run_start)
        return CellRecord(status="ok", settings=measured.load.settings, trial_group=measured.group,
                          latency={"inference": block, "end_to_end": None},
                          warnings=stability_warnings(block), **base)  # type: ignore[arg-type]  # fmt: skip

    def control_plan(self, target: str | None = None) -> Planned:
        """The control workload's cell (under Ray: one per target, measured on its nodes)."""
        workload = self.config.control_workload
        cell_id = control_id(target, workload)
        job = LoadJob(cell_id, TARGETS[workload], LoadSpec(source=""), [{}])
        return Planned(cell_id, "control", job, target=target, trial_share=SHARES[workload])

    # -- the sweep ----------------------------------------------------------------------------

    def run(self, writer: ResultsWriter, cells: list[Cell], stop: StopRequest,
            control_missing: bool = False) -> list[CellRecord]:  # fmt: skip
        """Plan and measure `cells`, then the control workload (with `control_missing`, even
        when no cell is left: a resumed folder lacks its record); stop early (cleanly) when
        `stop.requested` is set."""
        records: list[CellRecord] = []
        skips_shown: set[tuple[str, str | None]] = set()

        def emit(record: CellRecord) -> None:
            writer.append(record)
            records.append(record)
            if record.kind != "cell":
                return
            if record.status == "skipped":  # one line per backend and reason
                if (record.backend, record.reason) in skips_shown:
                    return
                skips_shown.add((record.backend, record.reason))
                self.progress(f"  {record.backend}: skipped ({record.reason}); its other cells "
                              "skipped for the same reason are not listed")  # fmt: skip
                return
            self.progress(f"  {record.cell_id}: {describe_outcome(record)}")

        planned: list[Planned] = []
        try:
            executor = self.executor()  # a Ray cluster is joined before anything is exported
            for cell in cells:
                if stop.requested:
                    break
                try:
                    result = self.plan(cell)
                except Exception as exc:  # a model's forward, an export's read-back: one cell
                    result = self.head(
                        cell, "failed", reason=f"in the parent process: {type(exc).__name__}: "
                        f"{exc}", traceback=traceback.format_exc(),
                    )  # fmt: skip
                if isinstance(result, CellRecord):
                    emit(result)
                else:
                    planned.append(result)
            if (planned or control_missing) and self.config.control and not stop.requested:
                planned.extend(self.control_plan(t) for t in self.config.targets or [None])
            with TrialJournal(writer.path.parent / TRIALS_FILE) as journal:
                executor.measure(planned, lambda m: emit(self.judge(m)),
                                 lambda: stop.requested, journal.append)  # fmt: skip
                recorded = {r.cell_id for r in records}  # a stop after the last record
                journal.complete = not executor.stopped or all(
                    p.cell_id in recorded for p in planned
                )
        except KeyboardInterrupt:  # stop now: the job in flight is abandoned
            self.scheduler.kill()  # (Ray tasks in flight are cancelled by close())
            raise
        finally:
            self.scheduler.close()
            if self._ray is not None:
                self._ray.close()
        return records

    def executor(self) -> Scheduler | RayExecutor:
        """The local scheduler, or (--executor ray) Ray tasks on the cluster's nodes."""
        if self.config.executor != "ray":
            return self.scheduler
        from bench.rayexec import RayExecutor

        if self._ray is None:
            gpu = {n for n, c in self.classes.items() if c.device != "cpu"}
            self._ray = RayExecutor(self.config, self.log_dir, gpu, self.progress)
        return self._ray


def describe_outcome(record: CellRecord) -> str:
    """One line for the terminal: status, latency with its interval or throughput, parity."""
    if record.status not in ("ok", "parity_failed"):
        return f"{record.status}: {meaningful_line(record.reason)}"
    if record.throughput:
        tput = record.throughput
        text = f"{record.status}: {tput['items_per_s_wall']:.0f} items/s, {tput['requests']} requests"  # fmt: skip
    else:
        lat = (record.latency or {})["inference"] or {}
        low, high = lat.get("ci95_low_us"), lat.get("ci95_high_us")
        interval = f" [{low:.1f}-{high:.1f}]" if low and high else ""
        text = (f"{record.status}: {lat['center_us']:.1f} µs{interval} over "
                f"{lat['n_trials']} trials, {lat['throughput_items_per_s']:.0f} items/s")  # fmt: skip
    outputs = (record.parity or {}).get("outputs") or []
    worst = max((o["max_abs_err"] or 0.0 for o in outputs), default=0.0)
    text += f", max abs err {worst:.2g}"
    if record.warnings:
        text += f" [warning: {'; '.join(record.warnings)}]"
    return text
