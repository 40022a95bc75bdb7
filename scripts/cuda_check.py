"""Check bench's CUDA paths on a GPU machine in a few minutes; prints figures, exits 1 on a problem.

    python scripts/cuda_check.py [--out DIR]

Runs simple_cnn through `torch-cuda`, `ort-cuda` and the CPU `torch` baseline at batch 1 and
32, then checks: torch-cuda ran on the GPU (device name recorded) with parity; ort-cuda either
ran with CUDAExecutionProvider first among the providers actually in use, or was skipped with
the reason (never CPU numbers); inference-only latency is below end-to-end latency (the host
copies are outside the inference-only loop and inside the end-to-end one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-cuda-")) / "run"
    cmd = [sys.executable, "-m", "bench", "run", "--backends", "torch-cuda,ort-cuda,torch",
           "--opsets", "18", "--batch-sizes", "1,32", "--min-time", "0.5", "--max-time", "3",
           "--out", str(out), "--allow-failures"]  # fmt: skip
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=False)
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    problems = []
    for r in records:
        lat = (r.get("latency") or {}).get("inference") or {}
        e2e = (r.get("latency") or {}).get("end_to_end") or {}
        settings = r.get("settings") or {}
        print(f"{r['backend']:<10} b{r['batch_size']:<3} {r['status']:<14} "
              f"median {lat.get('p50_us', float('nan')):9.1f} µs  e2e {e2e.get('p50_us', float('nan')):9.1f} µs  "
              f"gpu {r.get('memory', {}).get('gpu_mb')} MiB  {settings.get('providers') or settings.get('device_name', '')}"
              f"  {r.get('reason') or ''}")  # fmt: skip
        if r["backend"] == "torch-cuda" and (
            r["status"] != "ok" or not settings.get("device_name")
        ):
            problems.append(f"torch-cuda b{r['batch_size']}: {r['status']} {r.get('reason')}")
        if r["backend"] == "ort-cuda":
            if r["status"] == "ok" and not settings["providers"].startswith(
                "CUDAExecutionProvider"
            ):
                problems.append(f"ort-cuda reported numbers from {settings['providers']}")
            elif r["status"] not in ("ok", "skipped"):
                problems.append(f"ort-cuda b{r['batch_size']}: {r['status']} {r.get('reason')}")
        if r["status"] == "ok" and r["device"] == "cuda" and lat["p50_us"] > e2e["p50_us"]:
            problems.append(f"{r['backend']} b{r['batch_size']}: inference-only above end-to-end")
    for problem in problems:
        print("PROBLEM:", problem)
    print("cuda check:", "ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
