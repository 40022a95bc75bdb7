"""Fidelity check: bench's medians against the vendors' own measurements, side by side.

    python scripts/fidelity.py [--batch-sizes 1,32] [--rounds 3] [--seconds 3]

For simple_cnn at fp32 it measures, interleaved over several rounds in one run:
- bench's `openvino` cell (through a real bench worker) against OpenVINO's `benchmark_app`
  with the same settings (-hint latency -infer_precision f32 -shape ..., same thread count);
- bench's `ort-cpu` cell against a bare `run_with_iobinding` loop on the same session options.
It prints each median and the ratio bench / reference (targets: 1.10 and 1.05).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.backends import BACKENDS  # noqa: E402
from bench.backends.base import LoadSpec  # noqa: E402
from bench.export import export_model  # noqa: E402
from bench.jobs import CellJob  # noqa: E402
from bench.models import resolve_model  # noqa: E402
from bench.pool import Worker  # noqa: E402
from bench.timing import TimingPolicy  # noqa: E402

TARGETS = {"openvino": 1.10, "ort-cpu": 1.05}


def bench_median(worker: Worker, backend: str, onnx_path: str, inputs, seconds: float, threads):
    job = CellJob(
        backend_target=BACKENDS[backend].target,
        load=LoadSpec(onnx_path, "fp32", {k: v.shape for k, v in inputs.items()}, threads),
        inputs=[inputs],
        policy=TimingPolicy(
            warmup_iters=100,
            warmup_time=0.5,
            min_iters=100,
            min_time=seconds,
            max_time=seconds,
            target_ci=0,
        ),
        end_to_end=False,
    )
    outcome = worker.execute(job, timeout=600)
    if outcome.status != "ok":
        raise SystemExit(f"bench {backend} cell {outcome.status}: {outcome.reason}")
    return float(np.median(outcome.measurement.samples_ns)) / 1e3, outcome.settings


def benchmark_app_median(
    onnx_path: str, batch: int, seconds: float, threads: int | None
) -> tuple[float, str, float]:
    """benchmark_app's median (µs), the INFERENCE_NUM_THREADS it reports, and its wall time
    per iteration (µs, from its count and duration).

    benchmark_app's median is `InferRequest.latency`, timed inside OpenVINO's C++ wrapper: it
    excludes the Python call that any Python program (bench included) pays. The wall time per
    iteration of its own Python loop is printed beside it for context."""
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    cmd = [exe, "-m", onnx_path, "-d", "CPU", "-infer_precision", "f32",
           "-shape", f"input_image[{batch},3,32,32]", "-t", str(max(1, round(seconds)))]  # fmt: skip
    if threads:  # benchmark_app accepts -nthreads only with -hint none
        cmd += ["-hint", "none", "-nstreams", "1", "-nthreads", str(threads)]
    else:
        cmd += ["-hint", "latency"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark_app failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
    out = proc.stdout
    match = re.search(r"Median:\s+([\d.]+)\s+(ms|us)", out)
    found_threads = re.search(r"INFERENCE_NUM_THREADS:\s+(\d+)", out)
    if not match:
        raise SystemExit(f"could not read benchmark_app's median:\n{out[-2000:]}")
    value = float(match.group(1))
    median = value * 1000 if match.group(2) == "ms" else value
    count = re.search(r"Count:\s+(\d+)", out)
    duration = re.search(r"Duration:\s+([\d.]+)\s+ms", out)
    wall = (
        float(duration.group(1)) * 1000 / int(count.group(1))
        if count and duration
        else float("nan")
    )
    return median, found_threads.group(1) if found_threads else "?", wall


def bare_ort_median(onnx_path: str, inputs, seconds: float, threads: int | None) -> float:
    """The reference loop: the same session options, IO binding, nothing else."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    binding = session.io_binding()
    values = [ort.OrtValue.ortvalue_from_numpy(v, "cpu", 0) for v in inputs.values()]
    for name, value in zip(inputs, values, strict=True):
        binding.bind_ortvalue_input(name, value)
    for output in session.get_outputs():
        binding.bind_output(output.name, "cpu")
    run = session.run_with_iobinding
    deadline = time.perf_counter() + 0.5
    while time.perf_counter() < deadline:
        run(binding)
    samples = []
    end = time.perf_counter_ns() + int(seconds * 1e9)
    while True:
        t0 = time.perf_counter_ns()
        run(binding)
        t1 = time.perf_counter_ns()
        samples.append(t1 - t0)
        if t1 > end:
            break
    return float(np.median(samples)) / 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median kept)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--threads", type=int, default=None, help="threads for every runtime")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    spec = resolve_model("simple_cnn")
    with tempfile.TemporaryDirectory() as tmp:
        export = export_model(spec, spec.build_module(), "auto", 18, Path(tmp))
        assert export.ok, export.error
        path = str(export.path)
        rows = []
        logs = Path(tmp) / "logs"
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            inputs = spec.make_inputs({"batch": batch}, seed=0)
            for backend in ("openvino", "ort-cpu"):
                worker = Worker(logs / f"{backend}.log")
                ours, refs, walls = [], [], []
                try:
                    for _ in range(args.rounds):
                        median, settings = bench_median(
                            worker, backend, path, inputs, args.seconds, args.threads
                        )
                        ours.append(median)
                        if backend == "openvino":
                            ref, ref_threads, wall = benchmark_app_median(
                                path, batch, args.seconds, args.threads
                            )
                            walls.append(wall)
                            if ref_threads != settings["INFERENCE_NUM_THREADS"]:
                                raise SystemExit(
                                    f"thread counts differ: bench {settings['INFERENCE_NUM_THREADS']}"
                                    f", benchmark_app {ref_threads}"
                                )
                            refs.append(ref)
                        else:
                            refs.append(bare_ort_median(path, inputs, args.seconds, args.threads))
                finally:
                    worker.close()
                reference = "benchmark_app" if backend == "openvino" else "bare iobinding loop"
                a, b = statistics.median(ours), statistics.median(refs)
                wall = statistics.median(walls) if walls else None
                rows.append((backend, batch, reference, a, b, a / b, TARGETS[backend], wall))

    print(f"{'backend':<9} {'batch':>5}  {'reference':<20} {'bench µs':>9} {'ref µs':>9} "
          f"{'ratio':>6}  target")  # fmt: skip
    missed = 0
    for backend, batch, ref, a, b, ratio, target, wall in rows:
        verdict = "ok" if ratio <= target else "MISSED"
        missed += ratio > target
        context = f"  (benchmark_app's own loop: {wall:.2f} µs wall per iteration)" if wall else ""
        print(f"{backend:<9} {batch:>5}  {ref:<20} {a:>9.2f} {b:>9.2f} {ratio:>6.3f}  "
              f"<= {target:.2f} {verdict}{context}")  # fmt: skip
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    raise SystemExit(main())
