"""The flags that size and fill models' inputs: `--shape`, `--dims`, `--int-range`, and the
check that every model's batch axis can carry `--batch-sizes`. Each problem is one
`BenchError` line naming what is valid."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from bench.errors import BenchError
from bench.limits import MAX_BATCH
from bench.models import ModelSpec

IntRanges = dict[str, tuple[int, int]]


def whole_numbers(flag: str, text: str) -> tuple[int, ...]:
    """Comma-separated whole numbers, in order, without repeats."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            values.append(int(part))
        except ValueError:
            raise BenchError(f"{flag}: {part!r} is not a whole number") from None
    if not values:
        raise BenchError(f"{flag}: give at least one value")
    return tuple(dict.fromkeys(values))


def file_sizes(args: argparse.Namespace, models: tuple[str, ...]) -> dict[str, int]:
    """Sizes for ONNX-file models' dynamic dimensions: --shape, then --dims' first sizes."""
    from bench.models.onnx_file import shape_sizes

    files = [m for m in models if m.endswith(".onnx")]
    sizes: dict[str, int] = {}
    for item in args.shape:
        if not files:
            raise BenchError(f"--shape {item!r}: only for models given as .onnx files")
        name = item.partition("=")[0]
        holders = [f for f in files if Path(f).is_file() and _has_input(f, name)]
        if not holders:
            raise BenchError(f"--shape {item!r}: no ONNX file in this run has an input {name!r}")
        for file in holders:
            sizes.update(shape_sizes(item, file))
    for item in args.dims:
        name, _, values = item.partition("=")
        first = values.split(",")[0].strip()
        if first.isdigit() and int(first) >= 1:
            sizes.setdefault(name, int(first))
    return sizes


def _has_input(path: str, name: str) -> bool:
    import onnx

    return any(i.name == name for i in onnx.load(path, load_external_data=False).graph.input)


def swept_dims(
    items: list[str], specs: Mapping[str, ModelSpec]
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """`--dims NAME=SIZE,...`: named dimensions of the run's models, sizes 1 to MAX_BATCH."""
    known = sorted({d for spec in specs.values() for d in spec.dynamic_dims()})
    parsed = {}
    for item in items:
        name, eq, size_text = item.partition("=")
        if not eq:
            raise BenchError(f"--dims {item!r}: expected NAME=SIZE[,SIZE...]")
        if name not in known:
            valid = ", ".join(known) if known else "none (these models have only a batch dimension)"
            raise BenchError(
                f"--dims: no model in this run has a dimension {name!r}; valid: {valid}"
            )
        values = whole_numbers(f"--dims {name}", size_text)
        if any(not 1 <= v <= MAX_BATCH for v in values):
            raise BenchError(f"--dims {item!r}: sizes must be 1 to {MAX_BATCH}")
        parsed[name] = values
    return tuple(parsed.items())


def int_ranges(items: list[str], specs: Mapping[str, ModelSpec]) -> IntRanges:
    """`--int-range INPUT=LOW:HIGH`: integer inputs (by name) draw from LOW up to HIGH,
    exclusive. Each name must be an integer input of a model in the run."""
    parsed: IntRanges = {}
    usage = "expected INPUT=LOW:HIGH (whole numbers from LOW up to HIGH, exclusive)"
    for item in items:
        name, eq, text = item.partition("=")
        low_text, colon, high_text = text.partition(":")
        if not (name and eq and colon):
            raise BenchError(f"--int-range {item!r}: {usage}")
        try:
            low, high = int(low_text), int(high_text)
        except ValueError:
            raise BenchError(f"--int-range {item!r}: {usage}") from None
        if low >= high:
            raise BenchError(f"--int-range {item!r}: LOW must be below HIGH (HIGH is exclusive)")
        parsed[name] = (low, high)
    known = sorted({i.name for s in specs.values() for i in s.inputs if i.generator == "int"})
    for name in parsed:
        if name not in known:
            valid = ", ".join(known) if known else "none (no model in this run has one)"
            raise BenchError(
                f"--int-range: no model in this run has an integer input {name!r}; valid: {valid}"
            )
    return parsed


def batch_axes(specs: Mapping[str, ModelSpec], batches: tuple[int, ...]) -> None:
    """A model whose inputs have no batch axis runs one fixed input whatever the batch size:
    only the cell at its fixed batch measures what ran (the others are skipped). When none
    of `batches` is that size, nothing of it could be measured honestly: one error."""
    for ref, spec in specs.items():
        fixed = spec.fixed_batch()
        if fixed is not None and fixed not in batches:
            raise BenchError(f"{ref}: {batch_text(spec)}; add {fixed} to --batch-sizes "
                             f"(given: {', '.join(map(str, batches))})")  # fmt: skip


def batch_text(spec: ModelSpec) -> str:
    """Why a model with no batch axis runs at one batch size only."""
    fixed = spec.fixed_batch()
    shapes = ", ".join(f"{i.name}[{','.join(map(str, i.shape))}]" for i in spec.inputs)
    what = f"inputs {shapes} have no batch axis" if shapes else "it has no inputs"
    items = "1 item" if fixed == 1 else f"{fixed} items"
    return f"{what}: every inference is {items}, so only batch size {fixed} measures what ran"
