"""Command line: `bench run`, `bench list`, `bench report`, `bench compare`."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
from pathlib import Path

from bench.config import RunConfig
from bench.errors import BenchError
from bench.options import apply_config_file, config_from_args, positive
from bench.parser import build_parser
from bench.results import CLEAN_STATUSES, ENV_FILE, RUN_FILE
from bench.rundir import new_run_dir


def _resume_state(run_dir: Path, retry_failed: bool) -> tuple[RunConfig, str, dict, set[str]]:
    from bench.results import read_json, read_records

    if not (run_dir / RUN_FILE).is_file():
        raise BenchError(f"--resume: {run_dir} is not a run folder (no {RUN_FILE})")
    saved = read_json(run_dir / RUN_FILE)
    config = RunConfig.from_record(saved["config"])
    env = read_json(run_dir / ENV_FILE)
    # No results yet is a run stopped before its first record; a damaged file is an error
    # before anything runs, never a reason to measure everything again on top of it.
    done = read_records(run_dir) if (run_dir / "results.jsonl").exists() else []
    keep = CLEAN_STATUSES if retry_failed else None
    finished = {r["cell_id"] for r in done if keep is None or r["status"] in keep}
    return config, saved["run_id"], env, finished


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from bench.control import CONTROL_ID
    from bench.envinfo import collect_env
    from bench.explain_cmd import check_explain_cells
    from bench.record import CellRecord
    from bench.report import terminal_table, write_reports
    from bench.results import ResultsWriter, read_records, write_json
    from bench.runner import Runner, StopRequest

    command = ["bench", *argv]
    if args.resume:
        run_dir = Path(args.resume)
        config, run_id, env, finished = _resume_state(run_dir, args.retry_failed)
        env.setdefault("resumed_with", []).append(command)
    else:
        if args.retry_failed:
            raise BenchError("--retry-failed goes with --resume RUN_DIR")
        config = config_from_args(args)
        run_dir, run_id = new_run_dir(args.out)
        env, finished = collect_env(command, config.cpus), set()
        write_json(run_dir / RUN_FILE, {"run_id": run_id, "config": config.to_record()})
    write_json(run_dir / ENV_FILE, env)
    runner = Runner(config, run_dir, run_id)
    all_cells = runner.cells()
    check_explain_cells(config.explain_cells, all_cells, bool(args.resume and args.explain_cell))
    if config.control:
        finished.discard(CONTROL_ID)  # measured again with the cells still to run
    cells = [c for c in all_cells if c.cell_id not in finished]
    print(f"bench: {len(cells)} cells -> {run_dir}"
          + (f" ({len(all_cells) - len(cells)} already done)" if finished else ""))  # fmt: skip
    writer = ResultsWriter(run_dir)
    ran: list[CellRecord] = []
    stop_signal = None
    with StopRequest() as stop:
        try:
            ran = runner.run(writer, cells, stop)
        except KeyboardInterrupt:  # a second signal: the job in flight is lost, no more
            print("\nstopped now", file=sys.stderr)
            stop.requested = True
        finally:
            writer.close()
        stop_signal = stop.signal if stop.requested else None
    records = read_records(run_dir)
    paths = write_reports(run_dir, records, env, png=args.png)
    cell_records = [r for r in records if r.get("kind", "cell") == "cell"]
    print()
    print(terminal_table(records))
    print()
    print(f"run folder: {run_dir}")
    for path in paths:
        print(f"  {path}")
    if stop_signal is not None or len([r for r in ran if r.kind == "cell"]) < len(cells):
        print(f"stopped with {len(cell_records)} of {len(all_cells)} cells done; finish with: "
              f"bench run --resume {run_dir}", file=sys.stderr)  # fmt: skip
        return 128 + signal.SIGTERM if stop_signal == signal.SIGTERM else 130
    bad = [r for r in cell_records if r["status"] not in CLEAN_STATUSES]
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
        origin = f" (plugin: {entry.dist})" if getattr(entry, "dist", None) else ""
        print(f"  {name:<11} {cls.device:<5} consumes {cls.consumes:<6} {state}{origin}")
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
    comparison = compare(runs, baseline=0, normalize=args.normalize)
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
    parser, run_parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        if args.command == "run":
            if args.config:
                args = apply_config_file(args.config, parser, run_parser, argv)
            return cmd_run(args, argv)
        if args.command == "list":
            return cmd_list()
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "explain":
            from bench.explain_cmd import cmd_explain

            return cmd_explain(Path(args.run_dir), [*args.cell_ids, *args.explain_cell])
        if args.command == "noise":
            from bench.noise import cmd_noise

            return cmd_noise(args, argv)
        return cmd_report(args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
