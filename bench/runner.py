"""One sweep: export in the parent, run cells in workers, check parity, append records."""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.backends import backend_entry, load_backend_class
from bench.backends.base import LoadSpec
from bench.config import RunConfig
from bench.envinfo import cpu_governor
from bench.export import ExportResult, export_model, given_file
from bench.grid import Cell, expand_grid
from bench.jobs import CellJob, CellOutcome
from bench.models import ModelSpec, resolve_model
from bench.parity import compare_outputs
from bench.pool import Worker, WorkerLost
from bench.results import ResultsWriter
from bench.stats import summarize
from bench.timing import Measurement

REFERENCE_TORCH = "torch eager fp32"
REFERENCE_ORT = "onnxruntime CPU, graph optimizations disabled (no PyTorch source)"
STABILITY_LIMIT = 0.10  # IQR/median above this is flagged
BUSY_MACHINE_LIMIT = 0.20  # other processes' share of all cores above this is flagged


@dataclass
class _ModelState:
    """Per-model work shared by its cells: the module, exports, reference outputs."""

    spec: ModelSpec
    module: Any = None
    exports: dict[tuple[str, int], ExportResult] = field(default_factory=dict)
    references: dict[tuple, list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]] = field(
        default_factory=dict
    )


def ort_reference(path: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Reference outputs for a model given as an ONNX file: ONNX Runtime on the CPU with every
    graph optimisation off, the most literal reading of the graph available."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))


class StopRequest:
    """First Ctrl-C: finish the cell in flight, then stop. Second Ctrl-C: stop now."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> StopRequest:
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after the cell in flight (Ctrl-C again to stop now)", file=sys.stderr)


def _measurement_record(m: Measurement | None, items_per_sample: int) -> dict[str, Any] | None:
    if m is None:
        return None
    samples_us = [round(s / 1e3, 3) for s in m.samples_ns]
    return {
        **summarize(samples_us, items_per_sample),
        "stop_reason": m.stop_reason,
        "ci_met": m.ci_met,
        "warmup_iters": m.warmup_iters,
        "wall_s": round(m.wall_s, 3),
        "other_cpu_fraction": m.other_cpu_fraction,
        "samples_us": samples_us,
    }


def stability_warnings(
    latency: dict[str, Any] | None, target_ci: float, governor: str | None = None
) -> list[str]:
    """Why a cell's timing should not be trusted as it stands (empty when it should)."""
    if not latency or not latency.get("n"):
        return []
    found = []
    if governor and governor != "performance":
        found.append(f"CPU frequency governor is {governor!r}, not 'performance'")
    other = latency.get("other_cpu_fraction")
    if other is not None and other > BUSY_MACHINE_LIMIT:
        found.append(f"other processes used {other:.0%} of the CPU during the cell")
    # IQR/median, not the coefficient of variation: one scheduler hiccup in 20,000 samples
    # inflates the CV past 100% while the distribution's body is as tight as it gets.
    if latency["iqr_over_median"] > STABILITY_LIMIT:
        found.append(f"IQR/median {latency['iqr_over_median']:.0%} > {STABILITY_LIMIT:.0%}")
    if target_ci > 0 and not latency["ci_met"]:
        half = latency.get("ci95_rel_halfwidth")
        shown = f"±{half:.1%}" if isinstance(half, float) else "not computable"
        found.append(f"95% CI of the median {shown} missed the ±{target_ci:.1%} target")
    if latency["unreliable_percentiles"]:
        tails = ", ".join(f"p{p}" for p in latency["unreliable_percentiles"])
        found.append(f"too few samples for {tails} (fewer than 10 beyond each)")
    return found


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
        self._models: dict[str, _ModelState] = {}
        self._worker: Worker | None = None
        self._worker_backend: str | None = None
        self._worker_count = 0
        self.governor = cpu_governor()

    def cells(self) -> list[Cell]:
        dims = {model: self._model(model).spec.dynamic_dims() for model in self.config.models}
        files = frozenset(m for m in self.config.models if self._model(m).spec.onnx_path)
        consumes = {n: c.consumes for n, c in self.classes.items()}
        return expand_grid(self.config, consumes, dims, files)

    # -- parent-side model work -------------------------------------------------------------

    def _model(self, name: str) -> _ModelState:
        if name not in self._models:
            self._models[name] = _ModelState(resolve_model(name, dict(self.config.file_dims)))
        return self._models[name]

    def _module(self, state: _ModelState) -> Any:
        if state.module is None:
            state.module = state.spec.build_module()
        return state.module

    def _export(self, state: _ModelState, exporter: str, opset: int | None) -> ExportResult:
        key = (exporter, opset)
        if key not in state.exports and state.spec.onnx_path:
            state.exports[key] = given_file(state.spec.onnx_path)
        if key not in state.exports:
            self.progress(f"  exporting {state.spec.name} with {exporter} at opset {opset}")
            cache = Path(self.config.cache_dir)
            state.exports[key] = export_model(
                state.spec, self._module(state), exporter, opset, cache
            )
        return state.exports[key]

    def _reference(self, state: _ModelState, sizes: dict[str, int]):
        """Inputs and reference outputs (PyTorch eager fp32), one pair per parity seed."""
        key = tuple(sorted(sizes.items()))
        if key not in state.references and state.spec.onnx_path:
            state.references[key] = [
                (inputs, ort_reference(state.spec.onnx_path, inputs))
                for inputs in (
                    state.spec.make_inputs(sizes, seed) for seed in self.config.parity_seeds
                )
            ]
        if key not in state.references:
            import torch

            module = self._module(state)
            pairs = []
            for seed in self.config.parity_seeds:
                inputs = state.spec.make_inputs(sizes, seed=seed)
                args = [torch.from_numpy(inputs[n]) for n in state.spec.input_names]
                with torch.inference_mode():
                    result = module(*args)
                result = result if isinstance(result, tuple | list) else (result,)
                outputs = {
                    n: t.detach().float().numpy() if t.is_floating_point() else t.numpy()
                    for n, t in zip(state.spec.output_names, result, strict=True)
                }
                pairs.append((inputs, outputs))
            state.references[key] = pairs
        return state.references[key]

    # -- workers ------------------------------------------------------------------------------

    def _worker_for(self, backend: str) -> Worker:
        if self._worker is not None and (
            self._worker_backend != backend or not self._worker.alive()
        ):
            self._worker.close()
            self._worker = None
        if self._worker is None:
            self._worker_count += 1
            log = self.run_dir / "logs" / f"worker-{self._worker_count:03d}-{backend}.log"
            self._worker = Worker(log)
            self._worker_backend = backend
        return self._worker

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    # -- one cell -------------------------------------------------------------------------------

    def _cell_record(self, cell: Cell) -> dict[str, Any]:
        """The fields every record of `cell` starts with, whatever happens to it."""
        return {
            "run_id": self.run_id,
            "cell_id": cell.cell_id,
            "model": cell.model,
            "backend": cell.backend,
            "device": self.classes[cell.backend].device,
            "exporter": cell.exporter,
            "opset_requested": cell.opset,
            "batch_size": cell.batch_size,
            "dims": dict(cell.dims),
            "precision": cell.precision,
        }

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        """Everything for one cell, always ending in a record (never raising for the cell)."""
        backend_cls = self.classes[cell.backend]
        record = self._cell_record(cell)
        if cell.precision not in backend_cls.precisions:
            return {
                **record,
                "status": "skipped",
                "reason": f"{cell.backend} supports precisions {', '.join(backend_cls.precisions)}",
            }
        state = self._model(cell.model)
        record["reference"] = REFERENCE_ORT if state.spec.onnx_path else REFERENCE_TORCH
        if state.spec.onnx_path and backend_cls.consumes == "torch":
            return {
                **record,
                "status": "skipped",
                "reason": f"{cell.model} is an ONNX file: there is no PyTorch module to run",
            }
        tolerance = self.config.tolerance_for(cell.model, state.spec.tolerance(cell.precision))
        record["tolerance"] = {"rtol": tolerance.rtol, "atol": tolerance.atol}
        if backend_cls.consumes == "onnx":
            assert cell.exporter is not None
            export = self._export(state, cell.exporter, cell.opset)
            record["export"] = export.to_record()
            record["exporter_used"] = export.exporter_used
            record["opset_actual"] = export.opset_actual
            if not export.ok:
                tried = f"{export.fallback_reason}; then " if export.fallback_reason else ""
                return {**record, "status": "export_failed", "reason": tried + str(export.error)}
            source = str(export.path)
        else:
            source = cell.model
        pairs = self._reference(state, cell.sizes)
        job = CellJob(
            backend_target=self.entries[cell.backend].target,
            load=LoadSpec(
                source=source,
                precision=cell.precision,
                input_shapes={n: a.shape for n, a in pairs[0][0].items()},
                threads=self.config.threads,
                options=self.config.options_for(cell.backend),
                mode=self.config.mode,
                output_names=tuple(state.spec.output_names),
            ),
            inputs=[inputs for inputs, _ in pairs],
            policy=self.config.timing,
            end_to_end=self.config.end_to_end,
            mode=self.config.mode,
            requests=self.config.requests,
        )
        try:
            outcome = self._worker_for(cell.backend).execute(job, self.config.cell_timeout)
        except WorkerLost as lost:
            self._worker = None
            return {**record, "status": lost.status, "reason": str(lost)}
        if outcome.status == "skipped":
            outcome.reason = (
                f"{outcome.reason} (install: {self.entries[cell.backend].install_hint})"
            )
        return {**record, **self._judge(outcome, state.spec, pairs, cell, tolerance)}

    def _judge(self, outcome: CellOutcome, spec: ModelSpec, pairs, cell: Cell, tolerance) -> dict:
        result: dict[str, Any] = {
            "status": outcome.status,
            "reason": outcome.reason,
            "settings": outcome.settings,
            "cold_start": {"load_s": outcome.load_s, "first_run_ms": outcome.first_run_ms},
            "memory": {"peak_rss_mb": outcome.peak_rss_mb, "gpu_mb": outcome.gpu_memory_mb},
            "worker_imported_torch": outcome.torch_imported,
        }
        if outcome.traceback:
            result["traceback"] = outcome.traceback
        result["mode"] = self.config.mode
        if outcome.status != "ok":
            return result
        if outcome.throughput is not None:
            per_round = (outcome.inferences_per_round or 1) * cell.batch_size
            rounds = _measurement_record(outcome.throughput, per_round)
            assert rounds is not None
            rounds["requests"] = outcome.requests
            rounds["inferences_per_round"] = outcome.inferences_per_round
            rounds["items_per_s_wall"] = rounds["n"] * per_round / max(rounds["wall_s"], 1e-9)
            result["throughput"] = rounds
            result["settings"] = {**outcome.settings, "requests": str(outcome.requests)}
            timed = rounds
        else:
            timed = _measurement_record(outcome.measurement, cell.batch_size)
            result["latency"] = {
                "inference": timed,
                "end_to_end": _measurement_record(outcome.end_to_end, cell.batch_size),
            }
        target = self.config.timing.target_ci
        result["warnings"] = stability_warnings(timed, target, self.governor)
        parity = compare_outputs(
            outcome.outputs,
            [outputs for _, outputs in pairs],
            tolerance.rtol,
            tolerance.atol,
            [o.name for o in spec.outputs if o.logits],
        )
        result["parity"] = parity.to_record()
        if not parity.passed:
            result["status"] = "parity_failed"
            result["reason"] = "; ".join(parity.problems)
        return result

    def run(self, writer: ResultsWriter, cells: list[Cell], stop: StopRequest) -> list[dict]:
        """Run `cells` in order; stop early (cleanly) when `stop.requested` is set."""
        records = []
        try:
            for index, cell in enumerate(cells, 1):
                if stop.requested:
                    break
                self.progress(f"[{index}/{len(cells)}] {cell.cell_id}")
                try:
                    record = self.run_cell(cell)
                except Exception as exc:
                    # (the model's forward at this size, a reference, an export's read-back):
                    # that cell fails, the sweep goes on.
                    record = {
                        **self._cell_record(cell),
                        "status": "failed",
                        "reason": f"in the parent process: {type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc(),
                    }
                writer.append(record)
                records.append(record)
                self.progress(f"    {describe_outcome(record)}")
        finally:
            self.close()
        return records


def describe_outcome(record: dict[str, Any]) -> str:
    """One line for the terminal: status, median latency or throughput, parity."""
    status = record["status"]
    if status not in ("ok", "parity_failed"):
        reason = (record.get("reason") or "").splitlines()
        return f"{status}: {reason[0] if reason else ''}"
    if record.get("throughput"):
        tput = record["throughput"]
        text = f"{status}: {tput['items_per_s_wall']:.0f} items/s, {tput['requests']} requests"
    else:
        lat = record["latency"]["inference"]
        text = (
            f"{status}: median {lat['p50_us']:.1f} µs, {lat['throughput_items_per_s']:.0f} items/s"
        )
    worst = max((o["max_abs_err"] or 0.0 for o in record["parity"]["outputs"]), default=0.0)
    text += f", max abs err {worst:.2g}"
    if record.get("warnings"):
        text += f" [warning: {'; '.join(record['warnings'])}]"
    return text
