"""Command line: `bench run`, `bench list`, `bench report`, `bench compare`."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import sys
from pathlib import Path
from typing import NoReturn

from bench.config import BASELINE_BACKEND, DEFAULT_BACKENDS, RunConfig
from bench.errors import BenchError
from bench.options import apply_config_file, config_from_args, positive
from bench.results import CLEAN_STATUSES, ENV_FILE, RUN_FILE


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit 2), no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"bench: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="bench",
        allow_abbrev=False,
        description="Export PyTorch models to ONNX, run them on several runtimes, check the "
        "numbers against PyTorch and measure latency.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a sweep and write results/<run-id>/", allow_abbrev=False)
    run.add_argument(
        "--models",
        default="simple_cnn",
        help="comma-separated registry names or module:function / file.py:function "
        "(default: simple_cnn)",
    )
    run.add_argument(
        "--backends",
        default=",".join(DEFAULT_BACKENDS),
        help=f"comma-separated backend names (default: {','.join(DEFAULT_BACKENDS)}); "
        f"'{BASELINE_BACKEND}' is added as the reference baseline unless --no-baseline",
    )
    run.add_argument(
        "--no-baseline",
        action="store_true",
        help=f"do not add the '{BASELINE_BACKEND}' baseline cells",
    )
    run.add_argument(
        "--exporter",
        default="auto",
        choices=["auto", "dynamo", "torchscript"],
        help="auto: the dynamo exporter, falling back to TorchScript when it cannot "
        "write the requested opset (default: auto)",
    )
    run.add_argument(
        "--opsets", default="13,17,18", help="comma-separated ONNX opsets (default: 13,17,18)"
    )
    run.add_argument(
        "--batch-sizes", default="1,8,32", help="comma-separated batch sizes (default: 1,8,32)"
    )
    run.add_argument(
        "--dims",
        action="append",
        default=[],
        metavar="NAME=SIZES",
        help="sweep a named dynamic dimension besides batch, e.g. seq=16,128 "
        "(repeatable; models without it ignore it; default: each model's own size)",
    )
    run.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="INPUT=AxBx...",
        help="for models given as .onnx files: the full shape of one input, which "
        "sizes its dynamic dimensions besides batch (batch comes from --batch-sizes)",
    )
    run.add_argument(
        "--precisions", default="fp32", help="comma-separated: fp32, bf16 (default: fp32)"
    )
    run.add_argument(
        "--warmup-iters", type=int, default=10, help="warm-up iterations at least (default: 10)"
    )
    run.add_argument(
        "--warmup-time", type=float, default=0.2, help="warm-up seconds at least (default: 0.2)"
    )
    run.add_argument(
        "--min-iters", type=int, default=50, help="timed iterations at least (default: 50)"
    )
    run.add_argument(
        "--min-time", type=float, default=1.0, help="timed seconds at least (default: 1.0)"
    )
    run.add_argument(
        "--max-time",
        type=float,
        default=10.0,
        help="stop timing a cell after this many seconds (default: 10)",
    )
    run.add_argument(
        "--target-ci",
        type=float,
        default=0.02,
        help="stop once the 95%% CI of the median is within this fraction of it; "
        "0 stops at the minimums (default: 0.02)",
    )
    run.add_argument(
        "--parity-seeds",
        default="0,1",
        help="seeds of the input batches compared with PyTorch (default: 0,1)",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads for every runtime (default: each runtime's own)",
    )
    run.add_argument(
        "--backend-option",
        action="append",
        default=[],
        metavar="BACKEND.KEY=VALUE",
        help="a runtime setting, e.g. openvino.PERFORMANCE_HINT=THROUGHPUT or "
        "ort-cpu.graph_optimization_level=basic (repeatable)",
    )
    run.add_argument(
        "--mode",
        default="latency",
        choices=["latency", "throughput"],
        help="latency: one request at a time; throughput: several requests in flight "
        "(OpenVINO THROUGHPUT hint and async queue, ONNX Runtime concurrent runs on one "
        "session), items/s over wall time (default: latency)",
    )
    run.add_argument(
        "--requests",
        type=int,
        default=None,
        help="throughput mode: requests in flight (default: OpenVINO's optimal number, "
        "2 for ONNX Runtime, 1 for torch)",
    )
    run.add_argument(
        "--no-end-to-end",
        action="store_true",
        help="skip the end-to-end (host arrays in and out) latency",
    )
    run.add_argument(
        "--cell-timeout",
        type=float,
        default=600.0,
        help="seconds before a cell's worker is killed (default: 600)",
    )
    run.add_argument("--out", default=None, help="run folder (default: results/<run-id>)")
    run.add_argument(
        "--cache-dir",
        default=None,
        help="export cache (default: $BENCH_CACHE_DIR or ~/.cache/bench/exports)",
    )
    run.add_argument(
        "--allow-failures",
        action="store_true",
        help="exit 0 even when cells failed, crashed, timed out or failed parity",
    )

    run.add_argument(
        "--rtol",
        action="append",
        default=[],
        metavar="[MODEL=]VALUE",
        help="parity rtol for every model, or MODEL=VALUE for one (repeatable)",
    )
    run.add_argument(
        "--atol",
        action="append",
        default=[],
        metavar="[MODEL=]VALUE",
        help="parity atol for every model, or MODEL=VALUE for one (repeatable)",
    )
    run.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="TOML or JSON file of run settings (keys are flag names with "
        "underscores; a [tolerances.MODEL] table sets rtol/atol); flags override it",
    )
    run.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="finish an interrupted run with its original configuration: run only "
        "the cells with no record",
    )
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: also run again the cells that failed, crashed, timed "
        "out, failed to export or failed parity",
    )
    run.add_argument(
        "--png",
        action="store_true",
        help="also write static PNG charts to charts/ (needs the png extra and chromium)",
    )

    sub.add_parser("list", help="list models and backends, and whether each backend runs here")

    parser.run_parser = run  # type: ignore[attr-defined] - for --config defaults
    report = sub.add_parser("report", help="rebuild the report files of a run folder")
    report.add_argument("run_dir", help="a run folder holding results.jsonl and env.json")
    report.add_argument("--png", action="store_true", help="also write static PNG charts")

    comp = sub.add_parser("compare", help="compare runs cell by cell, with statistics")
    comp.add_argument("run_dirs", nargs="+", help="run folders to compare")
    comp.add_argument(
        "--baseline", default=None, help="the run the others are compared with (default: the first)"
    )
    comp.add_argument(
        "--out",
        default=None,
        help="folder for compare.md and compare.html (default: results/compare-<time>)",
    )
    comp.add_argument(
        "--fail-on-regression",
        type=float,
        default=None,
        metavar="PCT",
        help="exit 1 when a significant slowdown exceeds PCT percent or a cell "
        "went from parity pass to fail",
    )
    return parser


def _new_run_dir(out: str | None) -> tuple[Path, str]:
    run_id = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{socket.gethostname()[:20]}"
    run_dir = Path(out) if out else Path("results") / run_id
    if out is None:
        suffix = 1
        while run_dir.exists():
            suffix += 1
            run_dir = Path("results") / f"{run_id}-{suffix}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BenchError(f"--out: cannot write to {run_dir} ({exc.strerror or exc})") from None
    if (run_dir / "results.jsonl").exists():
        raise BenchError(f"--out: {run_dir} already holds a run; choose another folder")
    return run_dir, run_dir.name


def _resume_state(run_dir: Path, retry_failed: bool) -> tuple[RunConfig, str, dict, set[str]]:
    from bench.results import read_json, read_records

    if not (run_dir / RUN_FILE).is_file():
        raise BenchError(f"--resume: {run_dir} is not a run folder (no {RUN_FILE})")
    saved = read_json(run_dir / RUN_FILE)
    config = RunConfig.from_record(saved["config"])
    env = read_json(run_dir / ENV_FILE)
    try:
        done = read_records(run_dir)
    except BenchError:
        done = []
    keep = CLEAN_STATUSES if retry_failed else None
    finished = {r["cell_id"] for r in done if keep is None or r["status"] in keep}
    return config, saved["run_id"], env, finished


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from bench.envinfo import collect_env
    from bench.report import terminal_table, write_reports
    from bench.results import ResultsWriter, read_records, write_json
    from bench.runner import Runner, StopRequest

    command = ["python", "-m", "bench", *argv]
    if args.resume:
        run_dir = Path(args.resume)
        config, run_id, env, finished = _resume_state(run_dir, args.retry_failed)
        env.setdefault("resumed_with", []).append(command)
    else:
        if args.retry_failed:
            raise BenchError("--retry-failed goes with --resume RUN_DIR")
        config = config_from_args(args)
        run_dir, run_id = _new_run_dir(args.out)
        env, finished = collect_env(command), set()
        write_json(run_dir / RUN_FILE, {"run_id": run_id, "config": config.to_record()})
    write_json(run_dir / ENV_FILE, env)
    runner = Runner(config, run_dir, run_id)
    all_cells = runner.cells()
    cells = [c for c in all_cells if c.cell_id not in finished]
    print(f"bench: {len(cells)} cells -> {run_dir}"
          + (f" ({len(all_cells) - len(cells)} already done)" if finished else ""))  # fmt: skip
    writer = ResultsWriter(run_dir)
    ran: list[dict] = []
    with StopRequest() as stop:
        try:
            ran = runner.run(writer, cells, stop)
        except KeyboardInterrupt:  # a second Ctrl-C: the cell in flight is lost, no more
            print("\nstopped now", file=sys.stderr)
        finally:
            writer.close()
    records = read_records(run_dir)
    paths = write_reports(run_dir, records, env, png=args.png)
    print()
    print(terminal_table(records))
    print()
    print(f"run folder: {run_dir}")
    for path in paths:
        print(f"  {path}")
    if len(ran) < len(cells):
        print(f"stopped with {len(records)} of {len(all_cells)} cells done; finish with: "
              f"python -m bench run --resume {run_dir}", file=sys.stderr)  # fmt: skip
        return 130
    bad = [r for r in records if r["status"] not in CLEAN_STATUSES]
    if bad:
        print(f"{len(bad)} cell(s) failed, crashed, timed out or failed parity", file=sys.stderr)
        return 0 if args.allow_failures else 1
    return 0


def cmd_list() -> int:
    from bench.backends import BACKENDS, availability, load_backend_class
    from bench.models import MODELS, resolve_model

    print("models:")
    for name in MODELS:
        spec = resolve_model(name)
        inputs = ", ".join(
            f"{i.name} {i.dtype}[{','.join(map(str, i.shape))}]" for i in spec.inputs
        )
        print(f"  {name:<17} {inputs} -> {', '.join(spec.output_names)}")
    print("backends:")
    for name, entry in BACKENDS.items():
        cls = load_backend_class(entry.target)
        ok, reason = availability(name)
        state = "available" if ok else f"unavailable: {reason}"
        print(f"  {name:<11} {cls.device:<5} consumes {cls.consumes:<6} {state}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import write_reports
    from bench.results import read_json, read_records

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir} is not a folder")
    records = read_records(run_dir)
    env = read_json(run_dir / ENV_FILE)
    for path in write_reports(run_dir, records, env, png=args.png):
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import Run, compare, regressions
    from bench.report.compare_report import (
        html_comparison,
        markdown_comparison,
        terminal_comparison,
    )
    from bench.results import read_json, read_records

    dirs = list(dict.fromkeys([*([args.baseline] if args.baseline else []), *args.run_dirs]))
    if len(dirs) < 2:
        raise BenchError("compare needs at least two different run folders")
    runs = []
    for folder in map(Path, dirs):
        if not folder.is_dir():
            raise BenchError(f"{folder} is not a run folder")
        config = (
            read_json(folder / RUN_FILE).get("config", {}) if (folder / RUN_FILE).exists() else {}
        )
        runs.append(Run(folder.name, read_records(folder), read_json(folder / ENV_FILE), config))
    if args.fail_on_regression is not None:
        positive("--fail-on-regression", args.fail_on_regression, allow_zero=True)
    comparison = compare(runs, baseline=0)
    gate = (
        None
        if args.fail_on_regression is None
        else regressions(comparison, args.fail_on_regression)
    )
    out = (
        Path(args.out)
        if args.out
        else Path("results") / f"compare-{dt.datetime.now():%Y%m%d-%H%M%S}"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(markdown_comparison(comparison, gate), encoding="utf-8")
    (out / "compare.html").write_text(html_comparison(comparison, gate), encoding="utf-8")
    print(terminal_comparison(comparison))
    print(f"\ncomparison: {out / 'compare.md'}, {out / 'compare.html'}")
    if gate:
        print("regression gate FAILED:", file=sys.stderr)
        for reason in gate:
            print(f"  {reason}", file=sys.stderr)
        return 1
    if gate is not None:
        print("regression gate passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        if args.command == "run":
            if args.config:
                args = apply_config_file(args.config, parser, argv)
            return cmd_run(args, argv)
        if args.command == "list":
            return cmd_list()
        if args.command == "compare":
            return cmd_compare(args)
        return cmd_report(args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
