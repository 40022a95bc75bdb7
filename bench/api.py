"""The Python API: `bench.run`, `bench.load`, `bench.compare` (reached lazily through
`bench.__getattr__`, so `import bench` stays light).

`run` takes the `bench run` flags as keyword arguments (`batch_sizes=[1, 4]` for
`--batch-sizes 1,4`, `no_baseline=True` for `--no-baseline`) and parses them with the command
line's own parser, so they are validated the same way. Every user mistake raises
`bench.BenchError` whose message is the line the command line prints after `bench: error: `.
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import BenchError
from bench.parser import build_parser
from bench.rundata import RunData, read_run

StrPath = str | PathLike[str]


@dataclass(frozen=True)
class RunResult:
    """What `bench.run` measured: the records as a DataFrame (one row per cell, the columns
    of summary.csv), the run folder and the exit status `bench run` would have given
    (0 every cell ok or skipped; 1 a cell failed; 128 + a signal when stopped)."""

    records: pd.DataFrame
    run_dir: Path | None
    exit_status: int


def _argv(run_parser: Any, settings: dict[str, Any]) -> list[str]:
    """`bench run` arguments for keyword settings; unknown names and wrong kinds refused."""
    argv: list[str] = []
    for name, value in settings.items():
        action = run_parser.flags.get(name)
        if action is None:
            valid = ", ".join(sorted(run_parser.flags))
            raise BenchError(f"bench.run: unknown setting {name!r}; valid: {valid}")
        option = max(action.option_strings, key=len)
        if value is None:
            continue
        if action.nargs == 0:  # an on/off flag
            if not isinstance(value, bool):
                raise BenchError(f"bench.run: {name} takes True or False, not {value!r}")
            argv += [option] if value else []
        elif isinstance(action, argparse._AppendAction):
            for item in [value] if isinstance(value, str | int | float) else value:
                argv += [option, str(item)]
        elif isinstance(value, bool):
            raise BenchError(f"bench.run: {name} takes a value, not {value!r}")
        elif isinstance(value, list | tuple | set | frozenset):
            argv += [option, ",".join(map(str, value))]
        else:
            argv += [option, str(value)]
    return argv


def run(**settings: Any) -> RunResult:
    """Run a sweep as `bench run` would (call it from the main thread: it handles Ctrl-C as
    the command does) and return its records; `BenchError` for a bad setting."""
    from bench.options import apply_config_file
    from bench.resume import check_resume_flags
    from bench.runcmd import run_measured

    parser, run_parser = build_parser()
    parser.raise_errors = run_parser.raise_errors = True
    argv = ["run", *_argv(run_parser, settings)]
    args = parser.parse_args(argv)
    if args.resume:
        check_resume_flags(run_parser, argv)
    if args.config:
        args = apply_config_file(args.config, parser, run_parser, argv)
    status, run_dir = run_measured(args, argv, run_parser)
    try:
        frame = load(run_dir) if run_dir is not None else pd.DataFrame()
    except BenchError:  # stopped before its first record
        frame = pd.DataFrame()
    return RunResult(frame, run_dir, status)


def _folder(value: object, what: str) -> Path:
    """A run folder argument as a Path; anything but text or a path is a one-line `BenchError`."""
    if isinstance(value, bool) or not isinstance(value, str | PathLike):
        raise BenchError(f"{what}: a run folder path (str or os.PathLike) is expected, not "
                         f"{type(value).__name__} {value!r:.60}")  # fmt: skip
    return Path(value)


def _read(run_dir: StrPath, with_config: bool = False) -> RunData:
    data = read_run(_folder(run_dir, "bench.load"), with_config=with_config)
    for line in [*data.problem_lines(), *data.caveats]:
        warnings.warn(f"{Path(run_dir).name}: {line}", stacklevel=3)
    return data


def load(run_dir: StrPath) -> pd.DataFrame:
    """A run folder's cells as a DataFrame (the columns of summary.csv, with `run_id`), read
    leniently as the reports read it (damaged lines skipped, with a warning); `attrs` holds
    `env` (env.json) and `caveats`."""
    from bench.report import summary_frame

    data = _read(run_dir)
    frame = summary_frame(data.records)
    ids = {r.get("cell_id"): r.get("run_id") for r in data.records}
    if not frame.empty:
        frame.insert(1, "run_id", [ids.get(c) for c in frame["cell_id"]])
    frame.attrs.update(env=data.env, caveats=list(data.caveats), run_dir=str(run_dir))
    return frame


def _compared(run_dirs: tuple[Any, ...], baseline: object) -> tuple[list[Path], int]:
    """The folders to compare (given one by one, or as one list or tuple), each once, and the
    baseline's index among them; a baseline that is not one of them is compared too, first,
    as `bench compare --baseline` does."""
    given = (
        run_dirs[0] if len(run_dirs) == 1 and isinstance(run_dirs[0], list | tuple) else run_dirs
    )
    folders: dict[Path, Path] = {}  # resolved -> as given
    for value in given:
        folder = _folder(value, "bench.compare")
        folders.setdefault(folder.resolve(), folder)
    if baseline is not None:
        chosen = _folder(baseline, "bench.compare: baseline")
        folders = {chosen.resolve(): folders.get(chosen.resolve(), chosen), **folders}
    if len(folders) < 2:
        raise BenchError("bench.compare needs at least two different run folders, given one by "
                         "one (compare(A, B, ...)) or as one list (compare([A, B, ...])); "
                         f"got {len(folders)}")  # fmt: skip
    return list(folders.values()), 0  # the baseline, when given, is first


def compare(*run_dirs: StrPath | list[StrPath] | tuple[StrPath, ...],
            baseline: StrPath | None = None, normalize: str = "auto") -> pd.DataFrame:  # fmt: skip
    """Compare runs with the baseline (one of them; default: the first) cell by cell, as
    `bench compare`: one row per cell and other run, with the ratio, its interval, the p-value
    and the verdict. The folders come one by one or as one list. `attrs` holds the
    environment differences and the control workload's basis per run."""
    from bench.comparison import JOIN_KEYS, Run
    from bench.comparison import compare as compare_runs

    if normalize not in ("auto", "control", "none"):
        raise BenchError(f"normalize: {normalize!r}; valid: auto, control, none")
    folders, base = _compared(run_dirs, baseline)
    runs = []
    for folder in folders:
        data = _read(folder, with_config=True)
        runs.append(Run(folder.name, data.records, data.env, data.config, len(data.unreadable)))
    result = compare_runs(runs, baseline=base, normalize=normalize)
    rows = []
    for cell in result.cells:
        row = dataclasses.asdict(cell)
        key = dict(zip(JOIN_KEYS, row.pop("key"), strict=True))
        key["dims"] = ",".join(f"{k}={v}" for k, v in key["dims"])
        rows.append({**key, "baseline": result.baseline, **row})
    frame = pd.DataFrame(rows)
    frame.attrs.update(env_differences=result.env_differences, basis=result.basis,
                       moved_together=result.moved_together)  # fmt: skip
    return frame


__all__ = ["BenchError", "RunResult", "compare", "load", "run"]
