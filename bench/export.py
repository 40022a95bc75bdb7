"""torch.onnx.export, once per (model, exporter, opset), cached on disk (bench.cache).

Facts this module is built on (torch 2.13, see DESIGN.md): the dynamo exporter asked for
opset 9-13 quietly writes opset 18; the TorchScript exporter honours opsets up to 20. So the
opset actually written is always read back from the file, and `auto` falls back to
TorchScript when the dynamo exporter cannot deliver the requested opset.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypedDict

from bench.cache import obtain
from bench.errors import BenchError
from bench.manifest import GRAPH_FILE, Entry, describe_model, entry_name, file_records, files_sha256
from bench.models.spec import InputSpec, ModelSpec, OutputSpec
from bench.timing import seconds

EXPORTERS = ("auto", "dynamo", "torchscript")
#: Part of the cache key: bump when what bench accepts as an export changes (5: entries with
#: a manifest of every file, bench.cache; older entries are never looked up again).
EXPORT_CHECKS_VERSION = 5
LOG_TAIL_CHARS = 2000


@dataclass(frozen=True)
class ExportResult:
    """One export: where the file is and what was actually written."""

    ok: bool
    exporter_requested: str
    exporter_used: str
    opset_requested: int | None
    opset_actual: int | None = None
    path: str | None = None
    sha256: str | None = None
    export_s: float | None = None
    cached: bool = False
    fallback_reason: str | None = None
    error: str | None = None
    graph_sha256: str | None = None  # the graph without opset and names (bench.graphhash)
    files: tuple[dict[str, object], ...] | None = None  # every file: name, size, sha256

    def to_record(self) -> dict:
        return asdict(self)


def opset_ranges() -> dict[str, tuple[int, int]]:
    """(min, max) opset each installed exporter accepts."""
    try:
        from torch.onnx import _constants as c

        low, high = c.ONNX_MIN_OPSET, c.ONNX_MAX_OPSET
        ts_high = getattr(c, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20)
    except ImportError:  # pragma: no cover - torch layout changed
        low, high, ts_high = 7, 23, 20
    return {"dynamo": (low, high), "torchscript": (low, ts_high), "auto": (low, high)}


def validate_opsets(opsets: list[int], exporter: str) -> None:
    """Raise `BenchError` for opsets the chosen exporter cannot write."""
    ranges = opset_ranges()
    low, high = ranges[exporter]
    bad = [o for o in opsets if not low <= o <= high]
    if bad:
        described = ", ".join(f"{name} {lo}-{hi}" for name, (lo, hi) in ranges.items())
        raise BenchError(
            f"opset {bad[0]} cannot be written with exporter {exporter!r}; valid: {described}"
        )


def actual_opset(path: str | Path) -> int:
    """The default-domain opset recorded in an ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ValueError(f"{path} declares no default-domain opset")


def specialised_dims(path: str | Path, spec: ModelSpec) -> list[str]:
    """Dynamic dimensions the exporter fixed to a size in the file's inputs, described."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {v.name: v.type.tensor_type.shape.dim for v in [*graph.input, *graph.output]}
    found = []
    ports: list[InputSpec | OutputSpec] = [*spec.inputs, *spec.outputs]
    for spec_input in ports:
        dims = shapes.get(spec_input.name)
        if dims is None:
            continue
        for axis, name in spec_input.dynamic_dims().items():
            if axis < len(dims) and not dims[axis].dim_param and dims[axis].dim_value:
                found.append(
                    f"dimension {name!r} of {spec_input.name!r} fixed to {dims[axis].dim_value}"
                )
    return found


@contextlib.contextmanager
def captured_output() -> Iterator[list[str]]:
    """Send fd 1 and 2 (C++ and Python) to a temporary file; yield a list that gets its text."""
    holder: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            for fd in (1, 2):
                os.dup2(sink.fileno(), fd)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield holder
        finally:
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            holder.append(sink.read().decode(errors="replace"))


def _cache_key(spec: ModelSpec, exporter: str, opset: int) -> str:
    import torch

    def ver(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "-"

    parts = [
        str(EXPORT_CHECKS_VERSION),
        spec.source_hash(),
        exporter,
        str(opset),
        torch.__version__,
        ver("onnxscript"),
        ver("onnx"),
        json.dumps(spec.export_sizes(), sort_keys=True),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class _ExportOptions(TypedDict):
    """The keyword arguments both exporters share."""

    export_params: bool
    opset_version: int
    do_constant_folding: bool
    input_names: list[str]
    output_names: list[str]


def _run_exporter(spec: ModelSpec, module, exporter: str, opset: int, path: Path) -> None:
    import torch

    example = spec.make_inputs(spec.export_sizes(), seed=0)
    args = tuple(torch.from_numpy(example[name]) for name in spec.input_names)
    common = _ExportOptions(
        export_params=True,
        opset_version=opset,
        do_constant_folding=True,
        input_names=spec.input_names,
        output_names=spec.output_names,
    )
    if exporter == "dynamo":
        dims: dict[str, object] = {}
        shapes = tuple(
            {
                axis: dims.setdefault(name, torch.export.Dim(name))
                for axis, name in i.dynamic_dims().items()
            }
            or None
            for i in spec.inputs
        )
        torch.onnx.export(module, args, str(path), dynamo=True, dynamic_shapes=shapes, **common)
    else:
        ports: list[InputSpec | OutputSpec] = [*spec.inputs, *spec.outputs]
        axes = {i.name: i.dynamic_dims() for i in ports if i.dynamic_dims()}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.onnx.export(module, args, str(path), dynamo=False, dynamic_axes=axes, **common)
        torch_dir = str(Path(torch.__file__).parent)
        for warning in caught:
            # Tracing follows the branch the example input took and bakes it into the graph.
            # Only the model's own code counts: torch's modules (nn.GRU) trace such checks safely.
            own_code = not str(warning.filename).startswith(torch_dir)
            if own_code and "Python boolean" in str(warning.message):
                raise ValueError(
                    "data-dependent control flow: the TorchScript trace took one branch for "
                    f"every input ({str(warning.message).splitlines()[0]})"
                )


def export_once(
    spec: ModelSpec,
    module,
    exporter: str,
    opset: int,
    cache_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export with one concrete exporter, or reuse the cached entry once it checks out.
    Never raises for the model; `progress` gets one line per real export or damaged entry."""
    say = progress or functools.partial(print, file=sys.stderr)
    # One folder per export, so weights saved as external data stay beside their graph.
    name = entry_name(spec.name, exporter, opset, _cache_key(spec, exporter, opset))
    result = functools.partial(
        ExportResult, exporter_requested=exporter, exporter_used=exporter, opset_requested=opset
    )
    logs: list[list[str]] = []

    def make(folder: Path) -> Entry:
        say(f"  {spec.name}: exporting {exporter} op{opset}")
        graph = folder / GRAPH_FILE
        with captured_output() as log:
            logs.append(log)
            _, elapsed = seconds(lambda: _write_and_check(spec, module, exporter, opset, graph))
        return Entry(spec.name, exporter, opset, actual_opset(graph), round(elapsed, 3),
                     describe_model(graph))  # fmt: skip

    try:
        entry, cached = obtain(cache_dir, name, exporter, opset, make, say)
    except Exception as exc:
        text = "".join(part for log in logs for part in log)[-LOG_TAIL_CHARS:]
        message = f"{type(exc).__name__}: {exc}".strip()[:LOG_TAIL_CHARS]
        tail = f"\n--- exporter output ---\n{text}" if text else ""
        return result(ok=False, error=message + tail)
    path = cache_dir / name / GRAPH_FILE  # resolved from the cache dir now, never stored
    return result(ok=True, opset_actual=entry.opset_actual, path=str(path.absolute()),
                  sha256=entry.sha256, export_s=entry.export_s, cached=cached,
                  files=file_records(entry.files))  # fmt: skip


def _write_and_check(spec: ModelSpec, module, exporter: str, opset: int, graph: Path) -> None:
    import onnx

    _run_exporter(spec, module, exporter, opset, graph)
    onnx.checker.check_model(str(graph))
    fixed = specialised_dims(graph, spec)
    if fixed:  # the file would reject every other size: not the export that was asked for
        raise ValueError(
            f"the {exporter} exporter did not keep the dynamic axes: {'; '.join(fixed)}"
        )


def given_file(path: str) -> ExportResult:
    """The "export" of a model that was given as an ONNX file: the file and its external
    data, hashed like a cache entry (the graph file counts as model.onnx)."""
    graph = Path(path).resolve()
    files = describe_model(graph)
    return ExportResult(ok=True, exporter_requested="file", exporter_used="file",
                        opset_requested=None, opset_actual=actual_opset(graph), path=str(graph),
                        sha256=files_sha256(files), files=file_records(files))  # fmt: skip


def export_model(
    spec: ModelSpec,
    module,
    exporter: str,
    opset: int,
    cache_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export for one (exporter, opset); `auto` tries dynamo, then TorchScript if needed."""
    if exporter != "auto":
        return export_once(spec, module, exporter, opset, cache_dir, progress)
    first = export_once(spec, module, "dynamo", opset, cache_dir, progress)
    if first.ok and first.opset_actual == opset:
        return replace(first, exporter_requested="auto")
    reason = (
        f"dynamo exporter failed: {(first.error or 'no error text').splitlines()[0]}"
        if not first.ok
        else f"dynamo exporter wrote opset {first.opset_actual}, not {opset}"
    )
    low, high = opset_ranges()["torchscript"]
    if not low <= opset <= high:
        return replace(
            first,
            exporter_requested="auto",
            fallback_reason=f"{reason}; torchscript cannot write opset {opset}",
        )
    second = export_once(spec, module, "torchscript", opset, cache_dir, progress)
    return replace(second, exporter_requested="auto", fallback_reason=reason)
