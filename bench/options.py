"""Validation of `bench run` flags and config files into a frozen `RunConfig`.

Every check runs before any work starts; each failure is one `BenchError` line naming the
valid choices.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config import RunConfig, default_cache_dir
from bench.configfile import read_config_file, run_defaults
from bench.errors import BenchError
from bench.limits import (
    DEFAULT_PROFILE_RUNS,
    MAX_BATCH,
    MAX_ITERS,
    MAX_PROFILE_RUNS,
    MAX_REQUESTS,
    MAX_SECONDS,
    MAX_SEED,
    MAX_TIMEOUT,
    MAX_TRIALS,
    in_range,
    thread_count,
)
from bench.models.probe import IMPORT_ALLOWANCE_S, set_probe_timeout
from bench.record import BASELINE_BACKEND
from bench.targets import check_executor

if TYPE_CHECKING:
    from bench.models.spec import ModelSpec


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(flag: str, text: str) -> tuple[int, ...]:
    from bench.inputflags import whole_numbers

    return whole_numbers(flag, text)


def positive(flag: str, value: float, allow_zero: bool = False) -> None:
    """A one-line error unless `value` is a finite number above 0 (or 0 when allowed)."""
    in_range(flag, value, 0, low_open=not allow_zero)


def check_numbers(args: argparse.Namespace) -> None:
    """Every numeric `bench run` flag in its range (bench.limits), before any model loads."""
    seconds = " seconds"
    in_range("--trials", args.trials, 1, MAX_TRIALS)
    in_range("--warmup-iters", args.warmup_iters, 0, MAX_ITERS)
    in_range("--warmup-time", args.warmup_time, 0, MAX_SECONDS, unit=seconds)
    in_range("--min-iters", args.min_iters, 1, MAX_ITERS)
    in_range("--min-time", args.min_time, 0, MAX_SECONDS, unit=seconds)
    in_range("--max-time", args.max_time, 0, MAX_SECONDS, low_open=True, unit=seconds)
    in_range("--cell-timeout", args.cell_timeout, 0, MAX_TIMEOUT, low_open=True, unit=seconds)
    set_probe_timeout(args.cell_timeout + IMPORT_ALLOWANCE_S)  # a `(module, inputs)` probe
    if args.max_time < args.min_time:
        raise BenchError(f"--max-time {args.max_time:g} is below --min-time {args.min_time:g}")
    if args.max_time < args.warmup_time:
        raise BenchError(f"--max-time {args.max_time:g} is below --warmup-time "
                         f"{args.warmup_time:g} (a trial's warm-up also stops at --max-time)")  # fmt: skip
    in_range("--seed", args.seed, 0, MAX_SEED)
    if args.threads is not None:
        thread_count("--threads", args.threads)
    if args.requests is not None:
        in_range("--requests", args.requests, 1, MAX_REQUESTS)
    for seed in _ints("--parity-seeds", args.parity_seeds):
        in_range("--parity-seeds", seed, 0, MAX_SEED)
    runs = getattr(args, "profile_runs", None)
    if runs is not None:
        if not getattr(args, "profile", True):
            raise BenchError("--profile-runs needs --profile (it sets how many inferences the "
                             "profiled pass runs)")  # fmt: skip
        in_range("--profile-runs", runs, 1, MAX_PROFILE_RUNS)


def profile_runs(args: argparse.Namespace) -> int:
    """Inferences of each cell's profiled pass: 0 without --profile."""
    if not getattr(args, "profile", False):
        return 0
    runs = getattr(args, "profile_runs", None)
    return DEFAULT_PROFILE_RUNS if runs is None else runs


def check_saved_config(config: RunConfig) -> None:
    """The limits of `check_numbers` applied to a configuration read back from run.json (a
    hand-edited one is held to the same ranges as the flags), and its cache writable."""
    timing = config.timing
    check_numbers(argparse.Namespace(
        trials=timing.trials, warmup_iters=timing.warmup_iters, warmup_time=timing.warmup_time,
        min_iters=timing.min_iters, min_time=timing.min_time, max_time=timing.max_time,
        cell_timeout=config.cell_timeout, seed=config.seed, threads=config.threads,
        requests=config.requests, parity_seeds=",".join(map(str, config.parity_seeds)),
        profile_runs=config.profile_runs or None,
    ))  # fmt: skip
    check_executor(config.executor, config.ray_address, list(config.targets))
    _cache_dir(config.cache_dir or None)


def check_noise_args(args: argparse.Namespace) -> None:
    """`bench noise`'s flags, as `bench run` checks the same ones."""
    from bench.backends import backend_entry
    from bench.export import validate_opsets

    in_range("--trials", args.trials, 2, MAX_TRIALS, unit=" (a comparison needs a spread)")
    in_range("--repeats", args.repeats, 1, MAX_TRIALS)
    in_range("--min-time", args.min_time, 0, MAX_SECONDS, unit=" seconds")
    in_range("--seed", args.seed, 0, MAX_SEED)
    for batch in _ints("--batch-sizes", args.batch_sizes):
        in_range("--batch-sizes", batch, 1, MAX_BATCH)
    validate_opsets([args.opset], "auto")
    for backend in _csv(args.backends):
        backend_entry(backend)
    resolve_models(_csv(args.models))


def resolve_models(
    models: Sequence[str], file_dims: Mapping[str, int] | None = None
) -> dict[str, ModelSpec]:
    """Every model resolved; the problems of all that cannot be, in one line, not the first."""
    from bench.models import resolve_model

    specs, problems = {}, []
    for model in models:
        try:
            specs[model] = resolve_model(model, file_dims)
        except BenchError as exc:
            problems.append(str(exc).splitlines()[0])
    if len(problems) == 1:
        raise BenchError(problems[0])
    if problems:
        numbered = "; ".join(f"({n}) {line}" for n, line in enumerate(problems, 1))
        raise BenchError(f"{len(problems)} of {len(models)} models cannot be used: {numbered}")
    return specs


def _backend_options(
    items: list[str], backends: tuple[str, ...]
) -> tuple[tuple[str, str, str], ...]:
    from bench.backends import backend_entry, load_backend_class

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
        try:
            load_backend_class(backend_entry(name).target).check_option(key, value)
        except ValueError as exc:
            raise BenchError(f"--backend-option {item!r}: {exc}") from None
        parsed.append((name, key, value))
    return tuple(parsed)


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
            in_range(f"{flag} {item!r}:", value, 0)
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
    try:  # the file's own numbers, checked even where a flag overrides them
        check_numbers(parser.parse_args(argv[:1]))
    except BenchError as exc:
        raise BenchError(f"--config {path}: {exc}") from None
    args = parser.parse_args(argv)
    args.config_tolerances = tolerances
    return args


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Validate every flag and build the run's frozen config (raises `BenchError`)."""
    from bench.backends import backend_entry
    from bench.export import validate_opsets
    from bench.inputflags import batch_axes, file_sizes, int_ranges, swept_dims
    from bench.models import with_int_ranges
    from bench.models.checks import ModelProblem, check_spec
    from bench.models.spec import PRECISIONS
    from bench.shard import parse_shard
    from bench.timing import TimingPolicy

    check_numbers(args)
    check_executor(args.executor, args.ray_address, args.target)  # before any model loads
    if args.executor == "ray" and args.cpus:
        raise BenchError("--cpus pins this machine's cores; with --executor ray each task holds "
                         "all of its node's CPUs (valid: leave --cpus out)")  # fmt: skip
    models = tuple(dict.fromkeys(_csv(args.models)))
    if not models:
        raise BenchError("--models: give at least one model")
    file_dims = file_sizes(args, models)
    specs = resolve_models(models, file_dims)
    ranges = int_ranges(args.int_range, specs)
    for model, spec in specs.items():  # each range must fit the input's dtype
        try:
            check_spec(with_int_ranges(spec, ranges))
        except ModelProblem as problem:
            raise BenchError(f"--int-range: {model}: {problem}") from None
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
    batch_axes(specs, batches)
    dims = swept_dims(args.dims, specs)
    precisions = tuple(dict.fromkeys(_csv(args.precisions)))
    for precision in precisions:
        if precision not in PRECISIONS:
            raise BenchError(f"--precisions: unknown {precision!r}; valid: {', '.join(PRECISIONS)}")
    if not precisions:
        raise BenchError(f"--precisions: give at least one of {', '.join(PRECISIONS)}")
    seeds = _ints("--parity-seeds", args.parity_seeds)
    return RunConfig(
        models=models,
        backends=tuple(backends),
        exporter=args.exporter,
        opsets=opsets,
        batch_sizes=batches,
        dims=dims,
        file_dims=tuple(sorted(file_dims.items())),
        int_ranges=tuple((name, low, high) for name, (low, high) in sorted(ranges.items())),
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
        cache_dir=_cache_dir(args.cache_dir),
        tolerance_overrides=_tolerances(args, models),
        seed=args.seed,
        cpus=_cpus(args.cpus),
        allocator=args.allocator,
        control=not args.no_control,
        explain_cells=tuple(dict.fromkeys(getattr(args, "explain_cell", None) or ())),
        executor=args.executor,
        ray_address=args.ray_address,
        targets=check_executor(args.executor, args.ray_address, args.target),
        profile_runs=profile_runs(args),
        shard=parse_shard(args.shard) if getattr(args, "shard", None) is not None else None,
    )


def _cache_dir(text: str | None) -> str:
    """The export cache folder, made now (it is only a cache) and checked writable."""
    import tempfile

    path = Path(text) if text else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise BenchError(f"--cache-dir: cannot write to {path} ({exc.strerror or exc}); give "
                         "another folder or set BENCH_CACHE_DIR") from None  # fmt: skip
    return str(path)


def _cpus(text: str | None) -> str | None:
    """`0-1,3` -> "0,1,3", checked against the cores this process may use."""
    if text is None:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    valid = f"valid: {', '.join(map(str, allowed))}"
    if not text.strip():
        raise BenchError(f"--cpus: an empty list; give cores like 0-1 or 0,2 ({valid})")
    chosen: set[int] = set()
    for part in _csv(text):
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise BenchError(f"--cpus: {part!r} is not a core or a range like 0-1") from None
        if first > last:
            raise BenchError(f"--cpus: {part!r} is a reversed range; write {last}-{first}")
        # Checked before expanding: a range like 0-100000000 is refused, never built.
        outside = [c for c in (first, last) if c not in allowed]
        if outside:
            raise BenchError(f"--cpus: core {outside[0]} is not available; {valid}")
        chosen.update(range(first, last + 1))
    missing = sorted(chosen - set(allowed))  # a hole inside an allowed range (e.g. 0-3 of 0,1,3)
    if missing:
        raise BenchError(f"--cpus: core {missing[0]} is not available; {valid}")
    return ",".join(map(str, sorted(chosen)))
