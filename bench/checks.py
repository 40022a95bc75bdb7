"""Parity that explains itself: the parent side of a measured cell's parity checks.

For every measured cell: both verdicts against PyTorch fp32 and the fp64 oracle
(bench.assess), and batch consistency (items run alone against their rows in the batch, for
batch sizes above 1). When a verdict or the consistency check fails: whose fault it is
(bench.attribution), from the same ONNX file run in a reference that does not optimise. When
the cell fails (or is named by --explain-cell / `bench explain`): the first node where the
backend leaves that reference (bench.diverge).

Everything that loads a runtime runs in a worker process: the backend's checks in a worker
of their own (`checks-<backend>`, so a crash there never touches the workers that hold the
run's loaded cells), the file's reference in the run's `reference` worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from bench.artifacts import Artifacts
from bench.assess import Assessment, assess, fold_consistency
from bench.attribution import attribute, second_opinion
from bench.backends.base import LoadSpec
from bench.checkjobs import (
    DivergenceJob,
    DivergenceOutcome,
    EvaluatorJob,
    OutputsJob,
    OutputsOutcome,
)
from bench.checkworker import REFERENCE_NAME
from bench.config import RunConfig
from bench.grid import Cell
from bench.jobs import Failure, Job, LoadJob, ReferenceJob, ReferenceOutcome
from bench.models import ModelSpec
from bench.parity import compare_outputs
from bench.pool import Worker, WorkerLost
from bench.record import BASELINE_BACKEND, CellRecord
from bench.verdicts import NOISE_K, U32, batch_consistency

Arrays = Mapping[str, np.ndarray]
Pairs = Sequence[tuple[Arrays, Arrays]]
#: PyTorch eager fp32, the reference, as a backend: items alone run through it in a worker.
TORCH_TARGET = "bench.backends.torch_eager:TorchEager"
#: Seconds the first-divergence search may take per cell (checked between its passes).
DIVERGENCE_DEADLINE_S = 120.0


def batch_axis(shape: Sequence[Any] | None) -> int:
    """Where a port's batch dimension is: its "batch" axis, else the first."""
    return list(shape).index("batch") if shape and "batch" in shape else 0


def alone_items(spec: ModelSpec, batch: Arrays, batch_size: int) -> tuple[list[int], list[dict]]:
    """The first, middle and last items of `batch`, each as a batch of one."""
    items = sorted({0, batch_size // 2, batch_size - 1})
    axes = {i.name: i.shape.index("batch") if "batch" in i.shape else None for i in spec.inputs}
    alone = []
    for item in items:
        alone.append({name: value if axes.get(name) is None
                      else np.take(value, [item], axis=axes[name]) for name, value in batch.items()})  # fmt: skip
    return items, alone


def _rows_first(spec: ModelSpec, outputs: Arrays, size: int) -> dict[str, np.ndarray]:
    """Each output with its batch axis (of `size`) first; outputs without one left out."""
    shapes = {o.name: o.shape for o in spec.outputs}
    moved = {}
    for name, value in outputs.items():
        axis = batch_axis(shapes.get(name))
        value = np.asarray(value)
        if value.ndim > axis and value.shape[axis] == size:
            moved[name] = np.moveaxis(value, axis, 0)
    return moved


class ParityChecks:
    """Runs a cell's parity checks; `judge` fills `record.parity` and its status."""

    def __init__(
        self,
        config: RunConfig,
        artifacts: Artifacts,
        worker: Callable[[str, str], Worker],
        forget: Callable[[str], None],
        classes: Mapping[str, Any],
    ) -> None:
        self.config = config
        self.artifacts = artifacts
        self.worker = worker
        self.forget = forget
        self.classes = classes
        self._file_refs: dict[tuple, list[dict[str, np.ndarray]] | str] = {}

    def overridden(self, model: str) -> bool:
        """Whether --rtol/--atol (or a config file's tolerances) name this model."""
        return any(name in ("*", model) for name, _, _ in self.config.tolerance_overrides)

    def judge(self, record: CellRecord, cell: Cell, job: LoadJob, pairs: Pairs,
              outputs: Sequence[Arrays], explain: bool = False) -> None:  # fmt: skip
        """Fill `record.parity`; a failed cell becomes `parity_failed` with the reason."""
        spec = self.artifacts.spec(cell.model)
        tolerance = record.tolerance or {"rtol": 0.0, "atol": 0.0}
        rtol, atol = tolerance["rtol"], tolerance["atol"]
        torch32 = [out for _, out in pairs]
        report = compare_outputs(outputs, torch32, rtol, atol,
                                 [o.name for o in spec.outputs if o.logits])  # fmt: skip
        oracle = self.artifacts.oracle(cell.model, cell.sizes)
        fp64 = oracle.outputs if oracle.ok else None
        found = assess(report, outputs, torch32, fp64, oracle.to_record(), cell.precision,
                       self.overridden(cell.model))  # fmt: skip
        consistency, alone = self._consistency(cell, job, spec, pairs, outputs, found)
        fold_consistency(found, consistency)
        criterion = found.failing_criterion()
        if criterion or consistency.get("passed") is False:
            found.parity["attribution"] = self._attribute(
                cell, job, spec, pairs, outputs, fp64, found, criterion or found.deciding, alone
            )
        if not found.passed or explain or cell.cell_id in self.config.explain_cells:
            found.parity["divergence"] = self._diverge(cell, job, pairs, found, rtol)
        record.parity = found.parity
        if not found.passed:
            record.status, record.reason = "parity_failed", failure_reason(found.parity)
        elif record.status == "parity_failed":
            record.status, record.reason = "ok", None

    # -- workers ------------------------------------------------------------------------------

    def _run(self, key: str, job: Job) -> Any:
        """The reply of `job` in worker `key`, or a string saying why there is none."""
        try:
            reply = self.worker(key, key).execute(job, self.config.cell_timeout)
        except WorkerLost as lost:
            self.forget(key)
            return f"worker {lost.status}: {lost}"
        if isinstance(reply, Failure):
            return reply.reason
        return reply

    def _checks(self, cell: Cell, job: Job) -> Any:
        backend = self.classes[cell.backend]
        fresh = getattr(backend, "fresh_worker", False)
        key = f"checks-{cell.cell_id if fresh else cell.backend}"
        if not fresh and getattr(backend, "consumes", None) == "torch":
            # The reference worker already imports torch: reusing it spares a second import
            # (seconds) and a process. Neither worker ever times anything.
            key = "reference"
        try:
            return self._run(key, job)
        finally:
            if fresh:
                self.forget(key)

    def _file_reference(self, path: str, inputs: list[dict]) -> list[dict[str, np.ndarray]] | str:
        """The ONNX file's outputs under ONNX Runtime, optimisations off (made once)."""
        digest = hashlib.sha256()
        for batch in inputs:
            for name, array in sorted(batch.items()):
                digest.update(name.encode() + str(array.shape).encode() + array.tobytes())
        key = (path, digest.hexdigest())
        if key not in self._file_refs:
            reply = self._run("reference", ReferenceJob(path, inputs))
            self._file_refs[key] = (
                reply.outputs if isinstance(reply, ReferenceOutcome) else str(reply)
            )
        return self._file_refs[key]

    # -- the checks ---------------------------------------------------------------------------

    def _consistency(self, cell: Cell, job: LoadJob, spec: ModelSpec, pairs: Pairs,
                     outputs: Sequence[Arrays], found: Assessment) -> tuple[dict[str, Any], list]:  # fmt: skip
        if cell.batch_size < 2:
            return {"checked": False, "passed": None, "reason": "batch size 1"}, []
        items, alone = alone_items(spec, pairs[0][0], cell.batch_size)
        load = replace(job.load, input_shapes={n: a.shape for n, a in alone[0].items()})
        reply = self._checks(cell, OutputsJob(job.backend_target, load, alone))
        if not isinstance(reply, OutputsOutcome):
            return {"checked": True, "passed": False, "items": items,
                    "problems": [f"running one item alone failed: {reply}"]}, alone  # fmt: skip
        floors = found.floors if found.deciding == "noise_floor" else None
        rtol, atol = found.parity["rtol"], found.parity["atol"]
        result = compare_alone(spec, reply.outputs, outputs[0], items, cell.batch_size, floors,
                               rtol, atol)  # fmt: skip
        if result["passed"] is False:  # is it the model's own doing? Ask the reference.
            reference = self._reference_alone(cell, spec, alone)
            if (
                not isinstance(reference, str)
                and not compare_alone(
                    spec, reference, pairs[0][1], items, cell.batch_size, floors, rtol, atol
                )["passed"]
            ):
                result.update(passed=None, problems=[], reason="the model itself gives an item "
                              "different results alone and inside a batch (so does the "
                              "reference): not a property of the backend")  # fmt: skip
        return result, alone

    def _reference_alone(self, cell: Cell, spec: ModelSpec, alone: list) -> Any:
        """The reference's outputs for items alone: PyTorch eager fp32 (the torch backend, in
        a checks worker) or, for an ONNX file, ONNX Runtime without optimisations."""
        if spec.onnx_path:
            return self._file_reference(spec.onnx_path, alone)
        load = LoadSpec(source=cell.model, input_shapes={n: a.shape for n, a in alone[0].items()},
                        output_names=tuple(spec.output_names))  # fmt: skip
        reply = self._run(f"checks-{BASELINE_BACKEND}", OutputsJob(TORCH_TARGET, load, alone))
        return reply.outputs if isinstance(reply, OutputsOutcome) else str(reply)

    def _attribute(self, cell: Cell, job: LoadJob, spec: ModelSpec, pairs: Pairs,
                   outputs: Sequence[Arrays], fp64: Sequence[Arrays] | None, found: Assessment,
                   criterion: str, alone: list) -> dict[str, Any]:  # fmt: skip
        consumes = getattr(self.classes[cell.backend], "consumes", "onnx")
        file_ref: list[Any] | None = None
        problem: str | None = None
        file_consistent: bool | None = None
        if consumes == "torch":
            context = "no ONNX file (the backend runs the PyTorch module)"
        elif spec.onnx_path:
            context = "the reference is the ONNX file itself, run without optimisations"
        else:
            context = "the ONNX file agrees with PyTorch"
            got = self._file_reference(job.load.source, [dict(inputs) for inputs, _ in pairs])
            file_ref, problem = (None, got) if isinstance(got, str) else (got, None)
            consistency = found.parity.get("batch_consistency") or {}
            if file_ref is not None and consistency.get("passed") is False and alone:
                got_alone = self._file_reference(job.load.source, alone)
                file_consistent = not isinstance(got_alone, str) and bool(compare_alone(
                    spec, got_alone, file_ref[0], consistency["items"], cell.batch_size,
                    None, found.parity["rtol"], found.parity["atol"])["passed"])  # fmt: skip
        consistency = found.parity.get("batch_consistency") or {}
        torch32 = [out for _, out in pairs]
        rtol, atol = found.parity["rtol"], found.parity["atol"]
        result = attribute(
            criterion=criterion, rtol=rtol, atol=atol, precision=cell.precision, torch32=torch32,
            fp64=fp64, floors=found.floors, backend=outputs, file_ref=file_ref,
            file_ref_problem=problem, backend_consistent=consistency.get("passed"),
            file_consistent=file_consistent, reference_name=REFERENCE_NAME, context=context,
        )  # fmt: skip
        if result["cause"] != "export":
            return result
        reply = self._run("reference", EvaluatorJob(job.load.source, [dict(i) for i, _ in pairs]))
        evaluated = reply.outputs if isinstance(reply, OutputsOutcome) else None
        return second_opinion(result, evaluated, None if evaluated else str(reply),
                              torch32=torch32, fp64=fp64, floors=found.floors, rtol=rtol,
                              atol=atol)  # fmt: skip

    def _diverge(self, cell: Cell, job: LoadJob, pairs: Pairs, found: Assessment,
                 rtol: float) -> dict[str, Any]:  # fmt: skip
        if getattr(self.classes[cell.backend], "consumes", "onnx") != "onnx":
            return {"status": "not_applicable",
                    "reason": "the backend runs the PyTorch module: no ONNX graph to walk"}  # fmt: skip
        criterion = found.failing_criterion() or found.deciding
        if criterion == "noise_floor" and found.floors:
            threshold, rule = NOISE_K * min(found.floors.values()), f"{NOISE_K:g}x the noise floor"
        else:
            threshold, rule = (rtol or NOISE_K * U32), f"rtol={rtol:g} of each tensor's scale"
        reply = self._checks(cell, DivergenceJob(job.backend_target, job.load, dict(pairs[0][0]),
                                                 threshold, DIVERGENCE_DEADLINE_S))  # fmt: skip
        if not isinstance(reply, DivergenceOutcome):
            return {"status": "failed", "reason": str(reply), "threshold": threshold}
        return {**reply.result, "rule": rule}


def compare_alone(spec: ModelSpec, alone: Sequence[Arrays], batched: Arrays, items: list[int],
                  batch_size: int, floors: Mapping[str, float] | None, rtol: float,
                  atol: float) -> dict[str, Any]:  # fmt: skip
    """bench.verdicts.batch_consistency with every output's batch axis moved first."""
    rows = _rows_first(spec, batched, batch_size)
    singles = [_rows_first(spec, outputs, 1) for outputs in alone]
    return batch_consistency(singles, rows, items, floors, rtol, atol)


def failure_reason(parity: Mapping[str, Any]) -> str:
    """The problems, then whose fault and where it starts, when known."""
    reason = "; ".join(parity.get("problems") or []) or "parity failed"
    notes = []
    cause = (parity.get("attribution") or {}).get("cause")
    if cause:
        notes.append(f"attributed to: {cause}")
    node = (parity.get("divergence") or {}).get("node")
    if node:
        notes.append(f"first diverging node: {node['name']} ({node['op_type']})")
    return reason + (f" ({'; '.join(notes)})" if notes else "")
