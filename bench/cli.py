"""Command line: `bench run`, `list`, `report`, `compare`, `cache`, `explain`, `noise`, `merge`,
`history`."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from bench.diskio import WriteFailed, write_atomic
from bench.errors import BenchError
from bench.options import apply_config_file, positive
from bench.parser import build_parser
from bench.resume import check_resume_flags
from bench.runcmd import cmd_run
from bench.rundata import RunData, read_run
from bench.stdout import guard_stdout


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
        origin = f" (plugin: {entry.dist})" if getattr(entry, "dist", None) else ""
        print(f"  {name:<11} {cls.device:<5} consumes {cls.consumes:<6} {state}{origin}")
    return 0


def _caveats(data: RunData) -> None:
    for line in [*data.problem_lines(), *data.caveats]:
        print(f"bench: {line}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild the report files from the folder's records (bench.rundata's rules)."""
    from bench.report import write_reports

    data = read_run(Path(args.run_dir))
    _caveats(data)
    for path in write_reports(data.path, data.records, data.env, args.png, data.caveats):
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare_ops import op_type_changes
    from bench.comparison import Run, compare
    from bench.gate import gate as judge_gate
    from bench.report.compare_ops_report import html_ops, markdown_ops, terminal_ops
    from bench.report.compare_report import (
        html_comparison,
        markdown_comparison,
        terminal_comparison,
    )

    given = [*([args.baseline] if args.baseline else []), *args.run_dirs]
    first: dict[Path, str] = {}
    for folder in given:  # each folder once, in the order given (the baseline first)
        first.setdefault(Path(folder).resolve(), folder)
    dirs = list(first.values())
    if len(dirs) < 2:
        raise BenchError("compare needs at least two different run folders")
    if args.fail_on_regression is not None:
        positive("--fail-on-regression", args.fail_on_regression, allow_zero=True)
    runs, caveats = [], []
    for folder in map(Path, dirs):
        data = read_run(folder, with_config=True)
        _caveats(data)
        caveats += [f"{folder.name}: {line}" for line in data.caveats]
        runs.append(Run(folder.name, data.records, data.env, data.config, len(data.unreadable)))
    comparison = compare(runs, baseline=0, normalize=args.normalize)
    comparison.caveats = caveats + comparison.caveats
    ops = op_type_changes(runs)
    percent = args.fail_on_regression
    gate = None if percent is None else judge_gate(comparison, percent)
    out = (
        Path(args.out)
        if args.out
        else Path("results") / f"compare-{dt.datetime.now():%Y%m%d-%H%M%S}"
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteFailed(out, exc) from None
    markdown = markdown_comparison(comparison, gate) + "\n".join(markdown_ops(ops, comparison))
    html = html_comparison(comparison, gate, html_ops(ops, comparison))
    write_atomic({out / "compare.md": (markdown + "\n").encode("utf-8"),
                  out / "compare.html": html.encode("utf-8")})  # fmt: skip
    print(terminal_comparison(comparison))
    if ops:
        print(terminal_ops(ops, comparison))
    print(f"\ncomparison: {out / 'compare.md'}, {out / 'compare.html'}")
    if gate is None:
        return 0
    if gate.failures:
        print("regression gate FAILED:", file=sys.stderr)
        for reason in gate.failures:
            print(f"  {reason}", file=sys.stderr)
    elif gate.resolved:
        print(f"regression gate passed ({gate.resolved} of {len(comparison.cells)} cells judged;"
              f" a cell that cannot resolve never fails it; family-wise error {gate.alpha:.0%} "
              f"over the {gate.family} cells tested)")  # fmt: skip
    elif gate.family:
        print(f"regression gate passed without judging any of {len(comparison.cells)} "
              "cells: none could be resolved (see 'detectable'; more --trials in both runs "
              "narrow it)", file=sys.stderr)  # fmt: skip
    else:
        print(f"regression gate passed without testing any of {len(comparison.cells)} cells: "
              "none has two trials in both runs (--trials 2 or more)", file=sys.stderr)  # fmt: skip
    for line in gate.not_failing:
        print(f"  not failing: {line}", file=sys.stderr if gate.failures else sys.stdout)
    return 1 if gate.failures else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    guard_stdout()  # `bench run ... | head` must not cut the run short
    parser, run_parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        if args.command == "run":
            if args.resume:  # before a config file is read: it is one of the refused flags
                check_resume_flags(run_parser, argv)
            if args.config:
                args = apply_config_file(args.config, parser, run_parser, argv)
            return cmd_run(args, argv, run_parser)
        if args.command == "list":
            return cmd_list()
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "cache":
            from bench.cachecmd import cmd_cache

            return cmd_cache(args)
        if args.command == "explain":
            from bench.explain_cmd import cmd_explain

            return cmd_explain(Path(args.run_dir), [*args.cell_ids, *args.explain_cell])
        if args.command == "history":
            from bench.history.cmd import cmd_history

            return cmd_history(args)
        if args.command == "merge":
            from bench.merge import merge

            for path in merge([Path(d) for d in args.shard_dirs], Path(args.out),
                              args.allow_mixed_hardware, ["bench", *argv], args.png):  # fmt: skip
                print(path)
            return 0
        if args.command == "noise":
            from bench.noise import cmd_noise

            return cmd_noise(args, argv)
        return cmd_report(args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except WriteFailed as exc:  # report or compare files: the records are untouched
        print(f"bench: error: {exc}; nothing was replaced", file=sys.stderr)
        return 1
