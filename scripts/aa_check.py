"""A/A and A/B checks of bench's own comparisons, the way a user runs them.

    python scripts/aa_check.py [--repeats 3] [--out results/aa-check] [-- extra bench run flags]

Each repetition runs the sweep `bench run --models simple_cnn --backends ort-cpu,openvino`
(default settings) twice back to back (A, A') and once with `--threads 1` (T), each in its
own process, then compares A' against A with `bench compare --fail-on-regression 5` (nothing
changed: the gate must pass, at most one cell flagged) and T against A (a real change: the
batch-32 cells of ort-cpu and openvino must come out `slower`). It prints the verdict counts,
the gate's exit status and each run's wall time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.comparison import Run, compare
from bench.gate import regressions
from bench.results import read_json, read_records

SWEEP = ["--models", "simple_cnn", "--backends", "ort-cpu,openvino"]


def _run(folder: Path, extra: list[str], reuse: bool = False) -> float:
    if reuse and (folder / "results.jsonl").exists():
        return float("nan")  # measured before: only the comparisons are made again
    start = time.monotonic()
    proc = subprocess.run(["bench", "run", *SWEEP, "--out", str(folder), *extra],
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"bench run {folder} exited {proc.returncode}: {proc.stderr[-800:]}")
    return time.monotonic() - start


def _load(folder: Path) -> Run:
    config = read_json(folder / "run.json").get("config", {})
    return Run(folder.name, read_records(folder), read_json(folder / "env.json"), config)


def _gate(base: Path, other: Path, out: Path) -> int:
    proc = subprocess.run(["bench", "compare", str(base), str(other), "--out", str(out),
                           "--fail-on-regression", "5"], capture_output=True, text=True)  # fmt: skip
    return proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Flags after `--` go to every `bench run`.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=3,
                        help="repetitions of A, A' and T (each three fresh bench runs)")  # fmt: skip
    parser.add_argument("--out", default="results/aa-check", help="folder of the run folders")
    parser.add_argument("--reuse", action="store_true",
                        help="compare run folders already in --out instead of measuring again")  # fmt: skip
    args, extra = parser.parse_known_args()
    extra = [e for e in extra if e != "--"]
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    root = Path(args.out)
    if args.reuse:
        missing = [f"r{rep}-{side}" for rep in range(1, args.repeats + 1)
                   for side in ("A", "A2", "T1") if not (root / f"r{rep}-{side}" / "results.jsonl").is_file()]  # fmt: skip
        if missing:
            parser.error(f"--reuse: {root} lacks the run folders {', '.join(missing)} (run "
                         "without --reuse to measure them)")  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    summary = []
    for rep in range(1, args.repeats + 1):
        a, a2, t = root / f"r{rep}-A", root / f"r{rep}-A2", root / f"r{rep}-T1"
        walls = [_run(a, extra, args.reuse), _run(a2, extra, args.reuse),
                 _run(t, [*extra, "--threads", "1"], args.reuse)]  # fmt: skip
        aa = compare([_load(a), _load(a2)])
        ab = compare([_load(a), _load(t)])
        flagged = [c for c in aa.cells if c.verdict in ("slower", "faster")]
        counts: dict[str, int] = {}
        for cell in aa.cells:
            counts[cell.verdict] = counts.get(cell.verdict, 0) + 1
        b32 = {c.key[1]: c for c in ab.cells if c.key[4] == 32 and c.key[1] in ("ort-cpu", "openvino")
               and c.key[3] == 18}  # fmt: skip
        gate_rc = _gate(a, a2, root / f"r{rep}-cmp-AA")
        print(f"repetition {rep}: wall {walls[0]:.0f}/{walls[1]:.0f}/{walls[2]:.0f} s (A, A', T)")
        print(f"  A/A: {len(flagged)} of {len(aa.cells)} cells flagged {counts}; gate exit {gate_rc}; "
              f"{len(regressions(aa, 5))} regression(s); basis {aa.basis}; moved: {aa.moved_together}")  # fmt: skip
        for cell in flagged:
            print(f"    flagged {cell.key[1]} b{cell.key[4]} op{cell.key[3]}: {cell.ratio:.3f} "
                  f"[{cell.ratio_low:.3f}-{cell.ratio_high:.3f}] mde {cell.mde:.1%}")  # fmt: skip
        mdes = sorted(c.mde for c in aa.cells if c.mde is not None)
        if mdes:
            print(f"  A/A detectable change: median {mdes[len(mdes) // 2]:.1%}, "
                  f"range {mdes[0]:.1%}-{mdes[-1]:.1%}")  # fmt: skip
        for backend, cell in sorted(b32.items()):
            print(f"  threads 1 vs default, {backend} b32 op18: {cell.verdict}, ratio {cell.ratio:.2f} "
                  f"(vs control {cell.ratio_vs_control or float('nan'):.2f}), "
                  f"[{cell.ratio_low:.2f}-{cell.ratio_high:.2f}], mde {cell.mde:.1%}")  # fmt: skip
        summary.append((len(flagged), gate_rc, [c.verdict for c in b32.values()]))
    ok = all(f <= 1 and rc == 0 and v == ["slower", "slower"] for f, rc, v in summary)
    print("PASS" if ok else "FAIL", summary)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
