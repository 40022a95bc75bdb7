"""Validation of `bench run` flags and config files into a frozen `RunConfig`.

Every check runs before any work starts; each failure is one `BenchError` line naming the
valid choices.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from bench.config import RunConfig, default_cache_dir
from bench.configfile import read_config_file, run_defaults
from bench.errors import BenchError
from bench.record import BASELINE_BACKEND

MAX_BATCH = 65536


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(flag: str, text: str) -> tuple[int, ...]:
    values = []
    for part in _csv(text):
        try:
            values.append(int(part))
        except ValueError:
            raise BenchError(f"{flag}: {part!r} is not a whole number") from None
    if not values:
        raise BenchError(f"{flag}: give at least one value")
    return tuple(dict.fromkeys(values))


def positive(flag: str, value: float, allow_zero: bool = False) -> None:
    """A one-line error unless `value` is a finite number above 0 (or 0 when allowed)."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise BenchError(f"{flag} must be {'>= 0' if allow_zero else '> 0'}, got {value:g}")


def _backend_options(
    items: list[str], backends: tuple[str, ...]
) -> tuple[tuple[str, str, str], ...]:
    parsed = []
    for item in items:
        name, dot, rest = item.partition(".")
        key, eq, value = rest.partition("=")
        if not dot or not eq or not key:
            raise BenchError(f"--backend-option {item!r}: expected BACKEND.KEY=VALUE")
        if name not in backends:
            raise BenchError(
                f"--backend-option {item!r}: backend {name!r} is not in this run; "
                f"valid: {', '.join(backends)}"
            )
        parsed.append((name, key, value))
    return tuple(parsed)


def _file_dims(args: argparse.Namespace, models: tuple[str, ...]) -> dict[str, int]:
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
        if first.isdigit():
            sizes.setdefault(name, int(first))
    return sizes


def _has_input(path: str, name: str) -> bool:
    import onnx

    return any(i.name == name for i in onnx.load(path, load_external_data=False).graph.input)


def _dims(
    items: list[str], models: tuple[str, ...], sizes: dict[str, int]
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    from bench.models import resolve_model

    known = sorted({d for m in models for d in resolve_model(m, sizes).dynamic_dims()})
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
        values = _ints(f"--dims {name}", size_text)
        if any(not 1 <= v <= MAX_BATCH for v in values):
            raise BenchError(f"--dims {item!r}: sizes must be 1 to {MAX_BATCH}")
        parsed[name] = values
    return tuple(parsed.items())


def _tolerances(args: argparse.Namespace, models: tuple[str, ...]) -> tuple:
    overrides: list[tuple[str, float | None, float | None]] = []
    for flag, items in (("--rtol", args.rtol), ("--atol", args.atol)):
        for item in items:
            model, _, text = item.rpartition("=") if "=" in item else ("*", "", item)
            if model != "*" and model not in models:
                raise BenchError(f"{flag} {item!r}: model {model!r} is not in this run; "
                                 f"valid: {', '.join(models)}")  # fmt: skip
            try:
                value = float(text)
            except ValueError:
                raise BenchError(f"{flag} {item!r}: {text!r} is not a number") from None
            if value < 0:
                raise BenchError(f"{flag} {item!r}: must be >= 0")
            overrides.append((model, value, None) if flag == "--rtol" else (model, None, value))
    for model, values in getattr(args, "config_tolerances", {}).items():
        if model not in models:
            raise BenchError(f"config [tolerances.{model}]: model not in this run; valid: "
                             f"{', '.join(models)}")  # fmt: skip
        unknown = set(values) - {"rtol", "atol"}
        if unknown:
            raise BenchError(
                f"config [tolerances.{model}]: unknown {sorted(unknown)}; valid: rtol, atol"
            )
        overrides.insert(0, (model, values.get("rtol"), values.get("atol")))
    return tuple(overrides)


def apply_config_file(
    path: str, parser: argparse.ArgumentParser, run: argparse.ArgumentParser, argv: list[str]
) -> argparse.Namespace:
    """Re-parse `argv` with the file's settings as defaults (flags given still win)."""
    defaults, tolerances = run_defaults(read_config_file(path), run)
    run.set_defaults(**defaults)
    args = parser.parse_args(argv)
    args.config_tolerances = tolerances
    return args


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Validate every flag and build the run's frozen config (raises `BenchError`)."""
    from bench.backends import backend_entry
    from bench.export import validate_opsets
    from bench.models import resolve_model
    from bench.models.spec import PRECISIONS
    from bench.timing import TimingPolicy

    models = tuple(dict.fromkeys(_csv(args.models)))
    if not models:
        raise BenchError("--models: give at least one model")
    file_dims = _file_dims(args, models)
    for model in models:
        resolve_model(model, file_dims)
    backends = list(dict.fromkeys(_csv(args.backends)))
    if not backends:
        raise BenchError("--backends: give at least one backend")
    for backend in backends:
        backend_entry(backend)
    if not args.no_baseline and BASELINE_BACKEND not in backends:
        backends.append(BASELINE_BACKEND)
    opsets = _ints("--opsets", args.opsets)
    validate_opsets(list(opsets), args.exporter)
    batches = _ints("--batch-sizes", args.batch_sizes)
    for batch in batches:
        if not 1 <= batch <= MAX_BATCH:
            raise BenchError(f"--batch-sizes: {batch} is out of range; valid: 1 to {MAX_BATCH}")
    dims = _dims(args.dims, models, file_dims)
    precisions = tuple(dict.fromkeys(_csv(args.precisions)))
    for precision in precisions:
        if precision not in PRECISIONS:
            raise BenchError(f"--precisions: unknown {precision!r}; valid: {', '.join(PRECISIONS)}")
    if not precisions:
        raise BenchError(f"--precisions: give at least one of {', '.join(PRECISIONS)}")
    positive("--warmup-iters", args.warmup_iters, allow_zero=True)
    positive("--warmup-time", args.warmup_time, allow_zero=True)
    positive("--trials", args.trials)
    positive("--min-iters", args.min_iters)
    positive("--min-time", args.min_time, allow_zero=True)
    positive("--max-time", args.max_time)
    positive("--cell-timeout", args.cell_timeout)
    if args.max_time < args.min_time:
        raise BenchError(f"--max-time {args.max_time:g} is below --min-time {args.min_time:g}")
    if args.threads is not None:
        positive("--threads", args.threads)
    if args.requests is not None:
        positive("--requests", args.requests)
    seeds = _ints("--parity-seeds", args.parity_seeds)
    return RunConfig(
        models=models,
        backends=tuple(backends),
        exporter=args.exporter,
        opsets=opsets,
        batch_sizes=batches,
        dims=dims,
        file_dims=tuple(sorted(file_dims.items())),
        precisions=precisions,
        timing=TimingPolicy(
            trials=args.trials,
            warmup_iters=args.warmup_iters,
            warmup_time=args.warmup_time,
            min_iters=args.min_iters,
            min_time=args.min_time,
            max_time=args.max_time,
        ),
        parity_seeds=seeds,
        threads=args.threads,
        backend_options=_backend_options(args.backend_option, tuple(backends)),
        end_to_end=not args.no_end_to_end,
        mode=args.mode,
        requests=args.requests,
        cell_timeout=args.cell_timeout,
        cache_dir=str(Path(args.cache_dir) if args.cache_dir else default_cache_dir()),
        tolerance_overrides=_tolerances(args, models),
        seed=args.seed,
        cpus=_cpus(args.cpus),
        control=not args.no_control,
        explain_cells=tuple(dict.fromkeys(getattr(args, "explain_cell", None) or ())),
    )


def _cpus(text: str | None) -> str | None:
    """`0-1,3` -> "0,1,3", checked against the cores this process may use."""
    if not text:
        return None
    import os

    chosen: set[int] = set()
    for part in _csv(text):
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise BenchError(f"--cpus: {part!r} is not a core or a range like 0-1") from None
        chosen.update(range(first, last + 1))
    allowed = sorted(os.sched_getaffinity(0))
    outside = sorted(chosen - set(allowed))
    if not chosen or outside:
        raise BenchError(f"--cpus: cores {outside or text} are not available; valid: "
                         f"{', '.join(map(str, allowed))}")  # fmt: skip
    return ",".join(map(str, sorted(chosen)))
