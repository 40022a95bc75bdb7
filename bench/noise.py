"""`bench noise`: an A/A experiment. Each cell is measured as two identical twins whose
trials interleave; the twins' trials are cut into `repeats` simulated runs of `trials` trials
each, and every simulated run is compared twin against twin with the verdict `bench compare`
uses. Any verdict other than "unchanged"/"cannot resolve" is a false alarm. It prints the
false-alarm rate (with its Clopper-Pearson interval) and the minimum detectable effect for a
run of that length, so a user knows what their machine can resolve before trusting a gate."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.comparison import ALPHA, POWER, verdict
from bench.stats import ratio_test


@dataclass(frozen=True)
class TwinComparison:
    cell: str
    repeat: int
    ratio: float
    mde: float
    verdict: str


def _used_trials(record: dict[str, Any]) -> list[tuple[int, float]]:
    timed = (record.get("latency") or {}).get("inference") or record.get("throughput") or {}
    return sorted((t["index"], t["median_us"]) for t in timed.get("trials", []) if t["used"])


def twin_comparisons(records: Sequence[dict[str, Any]], trials: int) -> list[TwinComparison]:
    """Twin A against twin B in consecutive blocks of `trials` trials (pure)."""
    pairs: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:
        if record.get("twin") and record.get("status") == "ok":
            base = record["cell_id"].rsplit("/twin-", 1)[0]
            pairs.setdefault(base, {})[record["twin"]] = record
    found = []
    for cell, twins in sorted(pairs.items()):
        if set(twins) != {"A", "B"}:
            continue
        a, b = (_used_trials(twins[t]) for t in ("A", "B"))
        for repeat in range(min(len(a), len(b)) // trials):
            block = slice(repeat * trials, (repeat + 1) * trials)
            test = ratio_test([m for _, m in a[block]], [m for _, m in b[block]], ALPHA, POWER)
            if test is not None:
                found.append(TwinComparison(cell, repeat, test.ratio, test.mde, verdict(test)))
    return found


def summarize_noise(found: Sequence[TwinComparison]) -> dict[str, Any]:
    """False alarms, their rate with a 95% interval, and the minimum detectable effects."""
    from scipy.stats import binomtest

    alarms = [c for c in found if c.verdict in ("slower", "faster")]
    summary: dict[str, Any] = {"comparisons": len(found), "false_alarms": len(alarms)}
    if found:
        interval = binomtest(len(alarms), len(found)).proportion_ci(0.95, method="exact")
        summary.update(rate=len(alarms) / len(found), rate_low=interval.low,
                       rate_high=interval.high)  # fmt: skip
    by_cell: dict[str, list[TwinComparison]] = {}
    for c in found:
        by_cell.setdefault(c.cell, []).append(c)
    summary["cells"] = {
        cell: {"median_mde": sorted(x.mde for x in cs)[len(cs) // 2],
               "false_alarms": sum(x.verdict in ("slower", "faster") for x in cs),
               "ratios": [round(x.ratio, 4) for x in cs]}
        for cell, cs in by_cell.items()
    }  # fmt: skip
    return summary


def cmd_noise(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the A/A experiment and print what this machine can resolve."""
    import sys

    from bench.config import RunConfig, default_cache_dir
    from bench.envinfo import collect_env
    from bench.options import _csv, _ints, check_noise_args
    from bench.results import RUN_FILE, ResultsWriter, write_json
    from bench.rundir import new_run_dir
    from bench.runner import Runner, StopRequest
    from bench.timing import TimingPolicy

    check_noise_args(args)
    config = RunConfig(
        models=tuple(_csv(args.models)), backends=tuple(_csv(args.backends)),
        opsets=(args.opset,), batch_sizes=_ints("--batch-sizes", args.batch_sizes),
        timing=TimingPolicy(trials=args.trials * args.repeats, min_time=args.min_time),
        seed=args.seed, cache_dir=str(default_cache_dir()), end_to_end=False,
    )  # fmt: skip
    run_dir, run_id, _lock = new_run_dir(args.out, ["bench", *argv])  # held until the end
    write_json(run_dir / RUN_FILE, {"run_id": run_id, "config": config.to_record(),
                                    "noise": {"trials": args.trials, "repeats": args.repeats}})  # fmt: skip
    write_json(run_dir / "env.json", collect_env(["bench", *argv]))
    runner = Runner(config, run_dir, run_id)
    cells = runner.cells(twins=("A", "B"))
    print(f"bench noise: {len(cells)} twin cells, {args.trials * args.repeats} trials each "
          f"-> {run_dir}")  # fmt: skip
    writer = ResultsWriter(run_dir)
    with StopRequest() as stop:
        try:
            records = [r.to_json() for r in runner.run(writer, cells, stop)]
        finally:
            writer.close()
    summary = summarize_noise(twin_comparisons(records, args.trials))
    write_json(run_dir / "noise.json", summary)
    print(f"\nA/A: twins compared in {summary['comparisons']} simulated runs of {args.trials} "
          f"trials (alpha {ALPHA}, power {POWER})")  # fmt: skip
    for cell, info in summary["cells"].items():
        print(f"  {cell:<44} detectable change {info['median_mde']:6.1%}   false alarms "
              f"{info['false_alarms']}/{len(info['ratios'])}")  # fmt: skip
    if summary["comparisons"]:
        print(f"false-alarm rate {summary['rate']:.1%} (95% CI {summary['rate_low']:.1%}-"
              f"{summary['rate_high']:.1%}); a gate on this machine should ask for more than "
              f"the detectable change above. These twins share one run: whole runs differ "
              f"more (scripts/aa_check.py measures that), and the gate asks more than a verdict "
              f"(a slowdown beyond PCT, Holm over every cell: README, 'As a CI gate')")  # fmt: skip
    else:
        print("no comparison could be made (cells failed?)", file=sys.stderr)
        return 1
    print(f"written: {Path(run_dir) / 'noise.json'}")
    return 0 if math.isfinite(summary["rate"]) else 1
