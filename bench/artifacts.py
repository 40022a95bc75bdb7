"""What cells share, made once and kept: model specs, modules, exports, reference outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bench.export import ExportResult, given_file
from bench.graphhash import graph_sha256
from bench.jobs import ReferenceJob, ReferenceOutcome
from bench.models import ModelSpec, resolve_model
from bench.oracle import Oracle
from bench.prepjobs import ExportJob, ExportOutcome, OracleJob, OracleOutcome, PrepJob, PrepReply

Arrays = dict[str, np.ndarray]
#: (inputs, reference outputs), one pair per parity seed.
ReferencePairs = list[tuple[Arrays, Arrays]]

REFERENCE_TORCH = "torch eager fp32"
REFERENCE_ORT = "onnxruntime CPU, graph optimizations disabled (no PyTorch source)"


class ReferenceFailed(Exception):
    """The reference outputs for a model and size could not be computed; `status` is the
    cells' status (`failed`, or `timeout` when the forward outlasted `--cell-timeout`)."""

    def __init__(self, message: str, status: str = "failed") -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Model:
    spec: ModelSpec
    exports: dict[tuple[str, int | None], ExportResult] = field(default_factory=dict)
    references: dict[tuple, ReferencePairs | ReferenceFailed] = field(default_factory=dict)
    oracles: dict[tuple, Oracle] = field(default_factory=dict)  # fp64, beside `references`


class Artifacts:
    """Models, exports and references of one run, each computed at most once.

    `run_reference` computes reference outputs in a worker process, under `--cell-timeout`
    (an ONNX file's through ONNX Runtime, a PyTorch model's through its module): a crash or a
    forward that outlasts the timeout costs that model's cells. After a timeout the model's
    other sizes are not tried again (a larger input would take longer still). `run_prep` does
    the same for a PyTorch model's exports and its float64 oracle (bench.prepjobs): it returns
    the worker's reply, or a line saying why there is none (crashed, timed out, raised).
    """

    def __init__(
        self,
        file_dims: dict[str, int],
        cache_dir: Path,
        parity_seeds: tuple[int, ...],
        run_reference: Callable[[ReferenceJob], ReferenceOutcome],
        run_prep: Callable[[PrepJob], PrepReply | str],
        progress: Callable[[str], None] = print,
        int_ranges: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        self.file_dims = file_dims
        self.int_ranges = int_ranges or {}
        self.cache_dir = cache_dir
        self.parity_seeds = parity_seeds
        self.run_reference = run_reference
        self.run_prep = run_prep
        self.progress = progress
        self._models: dict[str, _Model] = {}

    def spec(self, model: str) -> ModelSpec:
        return self._model(model).spec

    def _model(self, ref: str) -> _Model:
        if ref not in self._models:
            self._models[ref] = _Model(resolve_model(ref, self.file_dims, self.int_ranges))
        return self._models[ref]

    def _export(self, state: _Model, exporter: str, opset: int) -> ExportResult:
        """Export in the reference worker (bench.prepworker), the model resolved as this run
        resolved it; a lost worker fails the export."""
        ranges = tuple((name, low, high) for name, (low, high) in sorted(self.int_ranges.items()))
        job = ExportJob(self._source(state), exporter, opset, str(self.cache_dir),
                        tuple(sorted(self.file_dims.items())), ranges)  # fmt: skip
        reply = self.run_prep(job)
        if not isinstance(reply, ExportOutcome):
            return ExportResult(ok=False, exporter_requested=exporter, exporter_used=exporter,
                                opset_requested=opset, error=f"export: {reply}")  # fmt: skip
        for line in reply.lines:
            self.progress(line)
        found = dict(reply.result)
        found["files"] = tuple(found["files"]) if found.get("files") is not None else None
        return ExportResult(**found)

    def export(self, model: str, exporter: str, opset: int | None) -> ExportResult:
        """The ONNX file for (model, exporter, opset), from the cache when it is there."""
        state = self._model(model)
        key = (exporter, opset)
        if key in state.exports:
            return state.exports[key]
        if state.spec.onnx_path:
            result = given_file(state.spec.onnx_path)
        else:
            assert opset is not None
            result = self._export(state, exporter, opset)
            how = "cached" if result.cached else f"exported in {result.export_s or 0:.1f} s"
            status = how if result.ok else "export failed"
            self.progress(f"  {state.spec.name}: {exporter} op{opset} {status}")
        if result.ok and result.path:
            result = replace(result, graph_sha256=graph_sha256(result.path))
        state.exports[key] = result
        return result

    def reference_name(self, model: str) -> str:
        return REFERENCE_ORT if self._model(model).spec.onnx_path else REFERENCE_TORCH

    def references(self, model: str, sizes: dict[str, int]) -> ReferencePairs:
        """Inputs and reference outputs at these sizes; raises `ReferenceFailed`."""
        state = self._model(model)
        key = tuple(sorted(sizes.items()))
        if key not in state.references:
            timed_out = [f for f in state.references.values()
                         if isinstance(f, ReferenceFailed) and f.status == "timeout"]  # fmt: skip
            if timed_out:
                raise timed_out[0]
            try:
                state.references[key] = self._compute_references(state, sizes)
            except ReferenceFailed as exc:
                state.references[key] = exc
        found = state.references[key]
        if isinstance(found, ReferenceFailed):
            raise found
        return found

    def _compute_references(self, state: _Model, sizes: dict[str, int]) -> ReferencePairs:
        inputs = [state.spec.make_inputs(sizes, seed) for seed in self.parity_seeds]
        spec = state.spec
        if spec.onnx_path:
            job, what = ReferenceJob(spec.onnx_path, inputs), "ONNX Runtime reference"
        else:
            job = ReferenceJob("", inputs, self._source(state), tuple(spec.input_names),
                               tuple(spec.output_names))  # fmt: skip
            what = f"PyTorch reference at {sizes}"
        try:
            if job.model and not state.references:  # import torch and build the module first
                self.run_reference(replace(job, inputs=[]))
            outcome = self.run_reference(job)
        except ReferenceFailed as exc:
            raise ReferenceFailed(f"{what}: {exc}", exc.status) from None
        return list(zip(inputs, outcome.outputs, strict=True))

    def _source(self, state: _Model) -> str:
        """The reference that names this model to a worker (as the torch backend gets it)."""
        return next(ref for ref, found in self._models.items() if found is state)

    def oracle(self, model: str, sizes: dict[str, int]) -> Oracle:
        """The fp64 oracle on the reference inputs at these sizes (bench.oracle), made once."""
        state = self._model(model)
        key = tuple(sorted(sizes.items()))
        if key not in state.oracles:
            if state.spec.onnx_path:
                found = Oracle("unavailable", reason="model given as an ONNX file: no PyTorch "
                               "module to run in float64")  # fmt: skip
            else:
                inputs = [batch for batch, _ in self.references(model, sizes)]
                reply = self.run_prep(OracleJob(
                    self._source(state), tuple(state.spec.input_names),
                    tuple(state.spec.output_names), inputs,
                ))  # fmt: skip
                found = (Oracle(reply.status, reply.outputs, reply.reason)
                         if isinstance(reply, OracleOutcome)
                         else Oracle("failed", reason=f"float64 run: {reply}"))  # fmt: skip
            state.oracles[key] = found
        return state.oracles[key]
