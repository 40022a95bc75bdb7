"""The command line's grammar. Every default comes from `RunConfig` or `TimingPolicy`, so
the help text, config files and the library agree; validation lives in bench.options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from bench.allocator import POLICIES
from bench.config import RunConfig
from bench.dashvalues import join_dash_values
from bench.errors import BenchError
from bench.history.parser import add_history_parser
from bench.limits import DEFAULT_PROFILE_RUNS
from bench.record import BASELINE_BACKEND
from bench.timing import TimingPolicy

RUN = RunConfig()
TIMING = TimingPolicy()


def _csv(values: tuple[object, ...]) -> str:
    return ",".join(str(v) for v in values)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit 2), no usage dump."""

    #: The Python API (bench.api) sets this: a usage error raises `BenchError` with the line
    #: the command line would print, instead of exiting.
    raise_errors = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """argparse's, with `join_dash_values` applied first."""
        given = sys.argv[1:] if args is None else args
        return super().parse_known_args(join_dash_values(given), namespace)

    def error(self, message: str) -> NoReturn:
        line = f"{message} (see '{self.prog} --help')"
        if self.raise_errors:
            raise BenchError(line)
        self.exit(2, f"bench: error: {line}\n")


class FlagParser(OneLineParser):
    """Keeps every flag added through its argument groups in `flags` (dest -> Action), so
    config files are checked against the flags without argparse's private attributes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flags: dict[str, argparse.Action] = {}

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument

        def recorded(*names: Any, **options: Any) -> argparse.Action:
            action = add(*names, **options)
            self.flags[action.dest] = action
            return action

        group.add_argument = recorded  # type: ignore[method-assign]
        return group

    def given(self, argv: list[str]) -> list[str]:
        """The recorded flags that `argv` (this subcommand's arguments) gives, by dest, in the
        order given. argparse reads a token starting with "--" as an option (abbreviations
        are off), so the option strings in `argv` are exactly the flags the user typed."""
        by_option = {o: dest for dest, a in self.flags.items() for o in a.option_strings}
        found: list[str] = []
        for token in argv:
            if token == "--":
                break
            dest = by_option.get(token.split("=", 1)[0])
            if dest is not None and dest not in found:
                found.append(dest)
        return found


def add_grid_flags(run: argparse.ArgumentParser) -> None:
    grid = run.add_argument_group("grid: what is measured")
    grid.add_argument("--models", default=_csv(RUN.models), help="comma-separated registry "
                      "names, package.module:function, path/to/file.py:function or "
                      "path/to/model.onnx (default: %(default)s)")  # fmt: skip
    grid.add_argument("--backends", default=_csv(RUN.backends), help="comma-separated backend "
                      f"names (default: %(default)s); '{BASELINE_BACKEND}' is added as the "
                      "reference baseline unless --no-baseline")  # fmt: skip
    grid.add_argument("--no-baseline", action="store_true",
                      help=f"do not add the '{BASELINE_BACKEND}' baseline cells")  # fmt: skip
    grid.add_argument("--exporter", default=RUN.exporter, choices=["auto", "dynamo", "torchscript"],
                      help="auto: dynamo, falling back to TorchScript when it cannot write the "
                      "requested opset (default: %(default)s)")  # fmt: skip
    grid.add_argument("--opsets", default=_csv(RUN.opsets),
                      help="comma-separated ONNX opsets (default: %(default)s)")  # fmt: skip
    grid.add_argument("--batch-sizes", default=_csv(RUN.batch_sizes),
                      help="comma-separated batch sizes (default: %(default)s)")  # fmt: skip
    grid.add_argument("--dims", action="append", default=[], metavar="NAME=SIZES",
                      help="sweep a named dynamic dimension besides batch, e.g. seq=16,128 "
                      "(repeatable)")  # fmt: skip
    grid.add_argument("--shape", action="append", default=[], metavar="INPUT=AxBx...",
                      help="for .onnx models: one input's full shape, sizing its dynamic "
                      "dimensions besides batch")  # fmt: skip
    grid.add_argument("--int-range", action="append", default=[], metavar="INPUT=LOW:HIGH",
                      help="integer input INPUT draws whole numbers from LOW up to HIGH, "
                      "exclusive (e.g. the row count of the table it indexes; .onnx files: "
                      "default 0:10) (repeatable)")  # fmt: skip
    grid.add_argument("--precisions", default=_csv(RUN.precisions),
                      help="comma-separated: fp32, bf16 (default: %(default)s)")  # fmt: skip
    grid.add_argument("--mode", default=RUN.mode, choices=["latency", "throughput"],
                      help="latency: one request at a time; throughput: several in flight, "
                      "items/s over wall time (default: %(default)s)")  # fmt: skip
    grid.add_argument("--requests", type=int, default=RUN.requests, help="throughput mode: "
                      "requests in flight (default: the runtime's choice)")  # fmt: skip
    grid.add_argument("--threads", type=int, default=RUN.threads,
                      help="intra-op threads for every runtime (default: each runtime's own)")  # fmt: skip
    grid.add_argument("--backend-option", action="append", default=[],
                      metavar="BACKEND.KEY=VALUE", help="a runtime setting, e.g. "
                      "openvino.PERFORMANCE_HINT=THROUGHPUT (repeatable)")  # fmt: skip


def add_timing_flags(run: argparse.ArgumentParser) -> None:
    timing = run.add_argument_group(
        "timing: each cell is measured in --trials trials, interleaved with every other "
        "cell's in a seeded random order; each trial warms up, then times a short loop"
    )
    timing.add_argument("--trials", type=int, default=TIMING.trials,
                        help="trials per cell; intervals come from the spread between them; "
                        "1 is a fast mode whose interval covers one loop (default: %(default)s)")  # fmt: skip
    timing.add_argument("--warmup-iters", type=int, default=TIMING.warmup_iters,
                        help="warm-up iterations per trial, at least (default: %(default)s)")  # fmt: skip
    timing.add_argument("--warmup-time", type=float, default=TIMING.warmup_time,
                        help="warm-up seconds per trial, at least (default: %(default)s)")  # fmt: skip
    timing.add_argument("--min-iters", type=int, default=TIMING.min_iters,
                        help="timed iterations per trial, at least (default: %(default)s)")  # fmt: skip
    timing.add_argument("--min-time", type=float, default=TIMING.min_time,
                        help="timed seconds per trial, at least (default: %(default)s)")  # fmt: skip
    timing.add_argument("--max-time", type=float, default=TIMING.max_time,
                        help="a trial's timed loop stops after this many seconds "
                        "(default: %(default)s)")  # fmt: skip
    timing.add_argument("--seed", type=int, default=RUN.seed,
                        help="seed of the trials' interleaved order (default: %(default)s)")  # fmt: skip
    timing.add_argument("--cpus", default=RUN.cpus, metavar="LIST",
                        help="pin worker processes to these cores, e.g. 0-1 or 0,2")  # fmt: skip
    timing.add_argument("--allocator", choices=POLICIES, default=RUN.allocator,
                        help="workers' memory allocator policy: steady fixes glibc's malloc "
                        "thresholds so a cell reuses its memory in every trial; system keeps the "
                        "C library's adaptive behaviour (default: %(default)s)")  # fmt: skip
    timing.add_argument("--no-control", action="store_true", help="do not measure the control "
                        "workload that tells machine drift from code changes")  # fmt: skip
    timing.add_argument("--no-end-to-end", action="store_true",
                        help="skip the end-to-end (host arrays in and out) latency")  # fmt: skip
    timing.add_argument("--profile", action="store_true",
                        help="after each cell's timed trials, a separate profiled pass: per-node "
                        "times from the runtime's own profiler, op-type shares, findings and a "
                        "trace (profiles/ in the run folder); the timed samples never include "
                        "it")  # fmt: skip
    timing.add_argument("--profile-runs", type=int, default=None, metavar="N",
                        help="inferences of the profiled pass, averaged (default: "
                        f"{DEFAULT_PROFILE_RUNS})")  # fmt: skip
    timing.add_argument("--cell-timeout", type=float, default=RUN.cell_timeout,
                        help="seconds one job of a cell (load, trial) may take before its "
                        "worker is killed (default: %(default)s)")  # fmt: skip


def add_parity_flags(run: argparse.ArgumentParser) -> None:
    parity = run.add_argument_group("parity: outputs against the PyTorch reference")
    parity.add_argument("--parity-seeds", default=_csv(RUN.parity_seeds),
                        help="seeds of the input batches compared (default: %(default)s)")  # fmt: skip
    parity.add_argument("--rtol", action="append", default=[], metavar="[MODEL=]VALUE",
                        help="rtol for every model, or MODEL=VALUE for one (repeatable)")  # fmt: skip
    parity.add_argument("--atol", action="append", default=[], metavar="[MODEL=]VALUE",
                        help="atol for every model, or MODEL=VALUE for one (repeatable)")  # fmt: skip
    parity.add_argument("--explain-cell", action="append", default=[], metavar="CELL_ID",
                        help="also find where this cell first diverges from the unoptimised "
                        "reference when it passes (failed cells always are; a finished run: "
                        "bench explain RUN_DIR CELL_ID)")  # fmt: skip


def add_output_flags(run: argparse.ArgumentParser) -> None:
    output = run.add_argument_group("output and control of the run")
    output.add_argument("--out", default=None, help="run folder (default: results/<run-id>)")
    output.add_argument("--cache-dir", default=None, help="export cache (default: "
                        "$BENCH_CACHE_DIR or ~/.cache/bench/exports)")  # fmt: skip
    output.add_argument("--allow-failures", action="store_true",
                        help="exit 0 even when cells failed")  # fmt: skip
    output.add_argument("--config", default=None, metavar="FILE", help="TOML or JSON file of "
                        "run settings (keys are flag names with underscores); flags win")  # fmt: skip
    output.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="finish an interrupted run with its original configuration")  # fmt: skip
    output.add_argument("--retry-failed", action="store_true",
                        help="with --resume: also run again the cells that did not pass")  # fmt: skip
    output.add_argument("--png", action="store_true",
                        help="also write static PNG charts (png extra and chromium)")  # fmt: skip
    output.add_argument("--shard", default=None, metavar="I/N", help="measure only the I-th "
                        "of N parts of the grid, balanced by expected cost (join the parts "
                        "with bench merge)")  # fmt: skip


def add_executor_flags(run: argparse.ArgumentParser) -> None:
    where = run.add_argument_group("executor: where cells are measured")
    where.add_argument("--executor", default=RUN.executor, choices=["local", "ray"],
                       help="local worker processes, or Ray tasks each holding a whole node "
                       "(ray extra: pip install -e '.[ray]') (default: %(default)s)")  # fmt: skip
    where.add_argument("--ray-address", default=RUN.ray_address, metavar="ADDR",
                       help="with --executor ray: the cluster to join (auto, HOST:PORT, "
                       "ray://HOST:PORT); default: a local instance on 127.0.0.1")  # fmt: skip
    where.add_argument("--target", action="append", default=[], metavar="KEY=VALUE",
                       help="with --executor ray: measure every cell on nodes whose Ray label "
                       "KEY is VALUE; repeat to compare hardware targets")  # fmt: skip


def add_compare_flags(comp: argparse.ArgumentParser) -> None:
    comp.add_argument("--baseline", default=None,
                      help="the run the others are compared with (default: the first)")  # fmt: skip
    comp.add_argument("--out", default=None, help="folder for compare.md and compare.html "
                      "(default: results/compare-<time>)")  # fmt: skip
    comp.add_argument("--fail-on-regression", type=_percent, default=None, metavar="PCT",
                      help="exit 1 when a cell is resolved to be more than PCT percent slower "
                      "(family-wise error 1%% over the cells, Holm) or went from parity pass "
                      "to fail")  # fmt: skip
    comp.add_argument("--normalize", choices=["auto", "control", "none"], default="auto",
                      help="verdicts on ratios relative to the control workload (control), "
                      "on raw ratios (none), or relative to the control only when the control "
                      "itself moved beyond its own noise between the runs (auto, the default)")  # fmt: skip


def _percent(text: str) -> float:
    """--fail-on-regression's value: a number (its range is checked with the others)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number: give a percentage, 0 or more (e.g. 5)"
        ) from None


def build_parser() -> tuple[OneLineParser, FlagParser]:
    """The parser, and its `run` subparser (config files set defaults on it)."""
    parser = OneLineParser(
        prog="bench", allow_abbrev=False,
        description="Export PyTorch models to ONNX, run them on several runtimes, check the "
        "numbers against PyTorch and measure latency.",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, parser_class=FlagParser)
    run = sub.add_parser("run", help="run a sweep and write results/<run-id>/", allow_abbrev=False)
    assert isinstance(run, FlagParser)
    for add in (
        add_grid_flags,
        add_timing_flags,
        add_parity_flags,
        add_output_flags,
        add_executor_flags,
    ):
        add(run)
    sub.add_parser("list", help="list models and backends, and whether each backend runs here")
    report = sub.add_parser("report", help="rebuild the report files of a run folder")
    report.add_argument("run_dir", help="a run folder holding results.jsonl and env.json")
    report.add_argument("--png", action="store_true", help="also write static PNG charts")
    explain = sub.add_parser("explain", help="explain cells of a finished run: whose fault "
                             "a difference is and where in the graph it starts")  # fmt: skip
    explain.add_argument("run_dir", help="a run folder holding results.jsonl and run.json")
    explain.add_argument("cell_ids", nargs="*", metavar="CELL_ID", help="cells to explain")
    explain.add_argument("--explain-cell", action="append", default=[], metavar="CELL_ID",
                         help="a cell to explain (repeatable; the same as CELL_ID)")  # fmt: skip
    comp = sub.add_parser("compare", help="compare runs cell by cell, trial by trial")
    comp.add_argument("run_dirs", nargs="+", help="run folders to compare")
    add_compare_flags(comp)
    noise = sub.add_parser("noise", allow_abbrev=False, help="A/A experiment: measure what "
                           "differences this machine can resolve")  # fmt: skip
    noise.add_argument("--models", default="simple_cnn", help="(default: %(default)s)")
    noise.add_argument("--backends", default="ort-cpu,openvino", help="(default: %(default)s)")
    noise.add_argument("--batch-sizes", default="1,32", help="(default: %(default)s)")
    noise.add_argument("--opset", type=int, default=18, help="(default: %(default)s)")
    noise.add_argument("--trials", type=int, default=TIMING.trials,
                       help="trials per twin in one simulated run (default: %(default)s)")  # fmt: skip
    noise.add_argument("--repeats", type=int, default=4,
                       help="simulated A/A runs per cell (default: %(default)s)")  # fmt: skip
    noise.add_argument("--min-time", type=float, default=TIMING.min_time,
                       help="timed seconds per trial (default: %(default)s)")  # fmt: skip
    noise.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    noise.add_argument("--out", default=None, help="run folder of the experiment")
    add_cache_parser(sub)
    add_history_parser(sub)
    merge = sub.add_parser("merge", help="join the shard folders of one sweep into one run "
                           "folder and rebuild its reports")  # fmt: skip
    merge.add_argument("shard_dirs", nargs="+", metavar="DIR", help="shard run folders "
                       "(bench run --shard I/N), every shard of the sweep once")  # fmt: skip
    merge.add_argument("--out", required=True, help="the merged run folder (new or empty)")
    merge.add_argument("--allow-mixed-hardware", action="store_true", help="merge shards "
                       "measured on different machines; the report groups by machine")  # fmt: skip
    merge.add_argument("--png", action="store_true", help="also write static PNG charts")
    return parser, run


def add_cache_parser(sub: Any) -> None:
    """`bench cache list|verify|clear`."""
    cache = sub.add_parser("cache", help="list, verify or clear the export cache")
    actions = cache.add_subparsers(
        dest="cache_command", required=True, metavar="{list,verify,clear}"
    )
    for name, text in (
        ("list", "one line per entry: model, exporter, opset, size, state"),
        ("verify", "hash every file of every entry; exit 1 when one is damaged"),
        ("clear", "remove entries (all, or one model's); other files are left alone"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("--cache-dir", default=None, help="export cache (default: "
                            "$BENCH_CACHE_DIR or ~/.cache/bench/exports)")  # fmt: skip
    actions.choices["verify"].add_argument("--repair", action="store_true",
                                           help="remove damaged entries (exported again on "
                                           "the next run) and exit 0")  # fmt: skip
    actions.choices["clear"].add_argument("--model", default=None, metavar="NAME",
                                          help="only this model's entries")  # fmt: skip
