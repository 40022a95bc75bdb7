"""`bench merge DIR... --out DIR`: join the shard folders of one sweep into one run folder.

Every check runs before anything is written, and a refusal is one line (exit 2):
each input is a finished shard folder (run.json with a `sweep`, env.json, results.jsonl of
valid records of its own run, no torn last line, the control workload's record when cells were
timed; no run in progress in it); all belong to one sweep (the same
sweep id and configuration apart from the shard, the same shard count, each shard once, one
record schema); together they hold every cell of the sweep's grid exactly once, each in the
shard the assignment gave it; and they were measured on one machine profile
(`bench.machines`) unless `allow_mixed` is given. Then --out is claimed under its lock
(`bench.rundir`), and results.jsonl, run.json and env.json are written as one set, followed
by the reports (grouped by machine when the hardware is mixed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import RunConfig
from bench.control import LEGACY, control_ids
from bench.diskio import WriteFailed, write_atomic
from bench.errors import BenchError
from bench.lock import run_in_progress
from bench.machines import differences, label, profile, profile_key
from bench.record import jsonable
from bench.results import (
    ENV_FILE,
    RESULTS_FILE,
    RUN_FILE,
    latest_records,
    read_json,
    scan_records,
    torn_last_line,
)
from bench.shard import LOCAL_KEYS, assign, sweep_id
from bench.validate_run import config_problem, env_problems

#: Statuses of a cell that reached its timed trials: the run then measured the control too.
TIMED_STATUSES = ("ok", "parity_failed", "crashed", "timeout")


@dataclass
class ShardFolder:
    """One input folder, read and checked on its own."""

    path: Path
    run_id: str
    config: dict[str, Any]
    sweep: dict[str, Any]
    env: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    schemas: set[int] = field(default_factory=set)

    @property
    def name(self) -> str:
        return f"{self.path} (shard {self.sweep['shard']}/{self.sweep['shards']})"


def _json(path: Path) -> dict[str, Any]:
    try:
        return read_json(path)
    except BenchError as exc:
        raise BenchError(f"merge: {exc}") from None


def read_shard(path: Path) -> ShardFolder:
    """A shard folder's run.json, env.json and latest records; `BenchError` on any damage."""
    if not path.is_dir():
        raise BenchError(f"merge: {path} is not a run folder (no such folder)")
    holder = run_in_progress(path)
    if holder:
        raise BenchError(f"merge: a run is in progress in {path} ({holder}); merge it once "
                         "it has finished")  # fmt: skip
    saved = _json(path / RUN_FILE)
    run_id, config, sweep = saved.get("run_id"), saved.get("config"), saved.get("sweep")
    if not isinstance(run_id, str) or not isinstance(config, dict) or config_problem(config):
        raise BenchError(f"merge: {path / RUN_FILE} holds no run id and configuration bench "
                         f"can read ({config_problem(config) if isinstance(config, dict) else 'no config'})")  # fmt: skip
    if not isinstance(sweep, dict) or not isinstance(config.get("shard"), list):
        raise BenchError(f"merge: {path} is not a shard (its run.json names no sweep: run "
                         "each part with bench run --shard I/N)")  # fmt: skip
    if (
        sweep.get("id") != sweep_id(config)
        or [sweep.get("shard"), sweep.get("shards")] != config["shard"]
    ):
        raise BenchError(f"merge: {path / RUN_FILE}: its sweep id or shard does not match its "
                         "configuration (the file was edited)")  # fmt: skip
    env = _json(path / ENV_FILE)
    problems = env_problems(env)
    if problems:
        raise BenchError(f"merge: {path / ENV_FILE}: {problems[0]}")
    shard = ShardFolder(path, run_id, config, sweep, env)
    try:
        good, bad = scan_records(path / RESULTS_FILE)
    except BenchError as exc:
        raise BenchError(f"merge: {exc} (an unfinished shard: bench run --resume {path})") from None
    if bad:
        raise BenchError(f"merge: {path / RESULTS_FILE}:{bad[0].line}: {bad[0].reason}")
    resume = f"an unfinished shard: finish it with bench run --resume {path}"
    torn = torn_last_line(path / RESULTS_FILE)
    if torn:
        raise BenchError(f"merge: {path / RESULTS_FILE}:{torn}: a torn last line (the shard was "
                         f"killed while writing a record): {resume}")  # fmt: skip
    for number, record in good:
        if record.get("run_id") != run_id:
            raise BenchError(f"merge: {path / RESULTS_FILE}:{number} is a record of run "
                             f"{record.get('run_id')!r}, not of this folder's {run_id!r}")  # fmt: skip
        shard.schemas.add(record["schema_version"])
    shard.records = latest_records(r for _, r in good)
    missing = _missing_controls(config, shard.records)
    if missing:
        raise BenchError(f"merge: {path} has no record of the control workload ({missing[0]}): "
                         f"it was stopped before measuring it: {resume}")  # fmt: skip
    for record in shard.records:
        record["host"] = record.get("host") or env.get("host")
    return shard


def _missing_controls(config: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """The control cell ids a shard should hold and does not: a run that timed a cell
    measures the control workload after its cells (unless --no-control)."""
    timed = any(r.get("kind", "cell") == "cell" and r.get("status") in TIMED_STATUSES
                for r in records)  # fmt: skip
    if not config.get("control", True) or not timed:
        return []
    targets = config.get("targets") or []
    held = {r.get("cell_id") for r in records if r.get("kind") == "control"}
    workload = str(config.get("control_workload", LEGACY))  # a config from before it: legacy
    return sorted(control_ids(tuple(map(str, targets)), workload) - held)


def check_sweep(shards: list[ShardFolder]) -> tuple[RunConfig, int]:
    """The sweep's configuration (no shard) and shard count, once the shards agree on them."""
    first = shards[0]
    for other in shards[1:]:
        if other.sweep["id"] != first.sweep["id"]:
            keys = sorted(k for k in set(first.config) | set(other.config)
                          if k not in LOCAL_KEYS and first.config.get(k) != other.config.get(k))  # fmt: skip
            raise BenchError(f"merge: {other.path} is a shard of another sweep than {first.path} "
                             f"(configurations differ in {', '.join(keys) or 'the shard count'})")  # fmt: skip
    seen: dict[int, ShardFolder] = {}
    for shard in shards:
        index = shard.sweep["shard"]
        if index in seen:
            raise BenchError(f"merge: {seen[index].path} and {shard.path} are both shard "
                             f"{index}/{shard.sweep['shards']} (the same part measured twice)")  # fmt: skip
        seen[index] = shard
    schemas = set().union(*(s.schemas for s in shards))
    if len(schemas) > 1:
        raise BenchError(f"merge: the shards hold records of schema versions "
                         f"{', '.join(map(str, sorted(schemas)))}: written by different bench "
                         "versions; rerun the older shards with this bench")  # fmt: skip
    try:
        config = RunConfig.from_record({**first.config, "shard": None})
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise BenchError(f"merge: {first.path / RUN_FILE}: not a configuration this bench can "
                         f"read ({type(exc).__name__}: {exc})") from None  # fmt: skip
    return config, int(first.sweep["shards"])


def check_cells(shards: list[ShardFolder], config: RunConfig, count: int, out: Path) -> list[str]:
    """The grid's cell ids in order, once every cell has exactly one record in its shard."""
    from bench.runner import Runner

    runner = Runner(config, out, "merge", progress=lambda _: None)
    grid = runner.cells()
    parts = assign(grid, runner.expected_cost, count)
    owner: dict[str, ShardFolder] = {}
    for shard in shards:
        mine = {c.cell_id for c in parts[shard.sweep["shard"] - 1]}
        for record in shard.records:
            if record.get("kind", "cell") != "cell":
                continue
            cell = record["cell_id"]
            if cell in owner:
                raise BenchError(f"merge: cell {cell} has a record in {owner[cell].path} and in "
                                 f"{shard.path}: a cell must come from one shard")  # fmt: skip
            if cell not in mine:
                raise BenchError(f"merge: {shard.name} holds cell {cell}, which is not its part "
                                 "of the sweep's grid")  # fmt: skip
            owner[cell] = shard
    missing = [c.cell_id for c in grid if c.cell_id not in owner]
    if missing:
        given = {s.sweep["shard"] for s in shards}
        absent = [f"{i}/{count}" for i in range(1, count + 1) if i not in given]
        unfinished = sorted({str(s.path) for s in shards
                             if any(c.cell_id in missing for c in parts[s.sweep["shard"] - 1])})  # fmt: skip
        hint = (f"shard(s) {', '.join(absent)} not given" if absent
                else f"unfinished: finish it with bench run --resume "
                     f"{' / '.join(unfinished) or 'SHARD_DIR'}")  # fmt: skip
        raise BenchError(f"merge: {len(missing)} of the sweep's {len(grid)} cells have no "
                         f"record ({missing[0]}{', ...' if len(missing) > 1 else ''}): {hint}")  # fmt: skip
    return [c.cell_id for c in grid]


def machine_groups(shards: list[ShardFolder], allow_mixed: bool) -> list[dict[str, Any]]:
    """One entry per machine profile: its label, hosts and shard folders."""
    groups: dict[str, list[ShardFolder]] = {}
    for shard in shards:
        groups.setdefault(profile_key(shard.env), []).append(shard)
    members = list(groups.values())
    if len(members) > 1 and not allow_mixed:
        a, b = members[0][0], members[1][0]
        raise BenchError(f"merge: {a.path} and {b.path} were measured on different hardware "
                         f"(env.json differs in {', '.join(differences(a.env, b.env))}); merge "
                         "them with --allow-mixed-hardware, and the report groups by machine")  # fmt: skip
    out = []
    for number, group in enumerate(members, 1):
        hosts = list(dict.fromkeys(str(s.env.get("host")) for s in group))
        out.append({"label": label(group[0].env, hosts, number), "hosts": hosts,
                    "folders": [str(s.path) for s in group], "run_ids": [s.run_id for s in group],
                    "profile": profile(group[0].env)})  # fmt: skip
    return out


def _encode(data: Any) -> bytes:
    return (json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n").encode("utf-8")


def merge(
    dirs: list[Path], out: Path, allow_mixed: bool, command: list[str], png: bool = False
) -> list[Path]:
    """Check the shards, then write the merged run folder and its reports; the files written."""
    from bench.report import write_reports
    from bench.rundir import new_run_dir

    resolved = [d.resolve() for d in dirs]
    for i, path in enumerate(resolved):
        if path in resolved[:i]:
            raise BenchError(f"merge: {dirs[i]} is given twice")
    inside = [d for d in resolved if out.resolve() == d or d in out.resolve().parents]
    if inside:
        raise BenchError(f"merge: --out {out} is one of the shard folders or inside one "
                         f"({inside[0]}); give a new folder outside them")  # fmt: skip
    held = [n for n in (RESULTS_FILE, RUN_FILE) if (out / n).exists()]
    if held:
        raise BenchError(f"merge: --out {out} already holds a run ({held[0]}); give a new folder")
    shards = sorted((read_shard(d) for d in dirs), key=lambda s: s.sweep["shard"])
    config, count = check_sweep(shards)
    order = check_cells(shards, config, count, out)
    machines = machine_groups(shards, allow_mixed)
    cells = [r for s in shards for r in s.records if r.get("kind", "cell") == "cell"]
    by_cell = {r["cell_id"]: r for r in cells}
    controls = [r for s in shards for r in s.records if r.get("kind") == "control"][:1]
    records = [by_cell[c] for c in order] + controls
    env = dict(shards[0].env)
    env["merged"] = {
        "command": command, "sweep": shards[0].sweep["id"], "mixed_hardware": len(machines) > 1,
        "shards": [{"folder": str(s.path), "run_id": s.run_id, "shard": s.sweep["shard"],
                    "host": s.env.get("host")} for s in shards],
        "machines": machines,
    }  # fmt: skip
    run_dir, run_id, lock = new_run_dir(str(out), command)
    with lock:
        run = {"run_id": run_id, "config": config.to_record(),
               "sweep": {"id": shards[0].sweep["id"], "shards": count, "merged": True}}  # fmt: skip
        lines = "".join(json.dumps(jsonable(r), allow_nan=False) + "\n" for r in records)
        try:
            write_atomic({run_dir / RESULTS_FILE: lines.encode("utf-8"),
                          run_dir / RUN_FILE: _encode(run), run_dir / ENV_FILE: _encode(env)})  # fmt: skip
        except WriteFailed as exc:
            raise BenchError(f"merge: {exc}; nothing was written") from None
        written = [run_dir / RESULTS_FILE, run_dir / RUN_FILE, run_dir / ENV_FILE]
        return written + write_reports(run_dir, records, env, png=png)
