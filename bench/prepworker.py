"""Worker side of bench.prepjobs: exports and float64 oracles of PyTorch models, run in the
reference worker, which builds each model's module once and keeps it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.prepjobs import ExportJob, ExportOutcome, OracleJob, OracleOutcome, PrepJob, PrepReply

#: fp32 modules by model reference (sizes and integer ranges change a model's inputs, never
#: its module), and their float64 copies: the reference forward, the exports and the oracle
#: of a model all run the same module.
_MODULES: dict[str, Any] = {}
_MODULES64: dict[str, Any] = {}


def _spec(job: ExportJob):
    from bench.models import resolve_model

    ranges = {name: (low, high) for name, low, high in job.int_ranges}
    return resolve_model(job.model, dict(job.sizes), ranges)


def module_of(model: str) -> Any:
    """The fp32 module of `model` (a model reference), built once per worker."""
    if model not in _MODULES:
        from bench.models import resolve_model

        _MODULES[model] = resolve_model(model).build_module()
    return _MODULES[model]


def _export(job: ExportJob) -> ExportOutcome:
    from bench.export import export_model

    lines: list[str] = []
    result = export_model(_spec(job), module_of(job.model), job.exporter, job.opset,
                          Path(job.cache_dir), lines.append)  # fmt: skip
    return ExportOutcome(result.to_record(), lines)


def _oracle(job: OracleJob) -> OracleOutcome:
    from bench.oracle import double_module, fp64_outputs

    try:
        if job.model not in _MODULES64:
            _MODULES64[job.model] = double_module(module_of(job.model))
    except Exception as exc:
        return OracleOutcome("failed", reason=f"float64 copy of the module failed: "
                             f"{type(exc).__name__}: {exc}")  # fmt: skip
    found = fp64_outputs(_MODULES64[job.model], job.input_names, job.output_names, job.inputs)
    return OracleOutcome(found.status, found.outputs, found.reason)


def run_prep(job: PrepJob) -> PrepReply:
    """Answer one preparation job (an exception becomes the worker's `Failure`)."""
    if isinstance(job, ExportJob):
        return _export(job)
    return _oracle(job)
