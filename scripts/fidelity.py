"""Fidelity check: bench's medians against the vendors' own measurements, in fresh processes.

    python scripts/fidelity.py [--backends ort-cpu,openvino] [--batch-sizes 1,32]
                               [--rounds 5] [--seconds 2] [--threads N] [--json PATH]

For simple_cnn at fp32 it compares, per backend and batch size:
- bench's `openvino` backend against OpenVINO's `benchmark_app` with the same settings
  (-hint latency -infer_precision f32 -shape ..., same thread count, checked), and against a
  bare OpenVINO Python loop compiled the same way (bench's own overhead; that loop also keeps
  OpenVINO's own timer of its calls, which is what benchmark_app reports, so the cost of the
  Python binding shows apart);
- bench's `ort-cpu` backend against a bare `run_with_iobinding` loop on the same session
  options (plain onnxruntime + numpy + time.perf_counter_ns).

The method, so that the check cannot fool itself:
- This process only orchestrates and never times anything (it reads the clock only to end
  benchmark_app's turns). The model is exported once by a
  preparation process (bench's exporter, into a temp folder; inputs written as .npy), so this
  process never holds torch either.
- Every measurement runs in its own fresh process that holds only what it measures. The bench
  side loads the backend through bench's registry and times `backend.run` with
  `bench.timing.measure`, the function bench itself uses; the reference side is a bare loop
  or `benchmark_app`. Each process checks that torch and the other runtime are not loaded
  (`sys.modules`; for benchmark_app, the libraries mapped into its process) and says so.
- Each round measures bench and the reference back to back, in alternating order (ABBA), and
  the ratio bench / reference is paired within the round. For ort-cpu (`--bursts K`, default
  20) the round's three fresh processes (bench, the bare loop, bench again for the A/A line)
  are started and warmed up together and then take K turns of `--seconds / K` each, the
  order rotating every turn, so that a slow phase of the machine (they last seconds to
  minutes here) falls on all of them instead of on whichever process ran during it; each turn
  warms up with 5 calls first, as a later trial of bench does. benchmark_app cannot be told
  to take turns, so an openvino round makes it: bench, bench A/A and the bare loop are loaded
  and warmed up one after another, then benchmark_app starts with `-niter` (an iteration
  count: time spent frozen is not cut from its run) and, from its first timed inference on,
  its process group is frozen (SIGSTOP) except during its own turns (SIGCONT for
  --seconds / K), rotating with the others until its iterations are done. A freeze can
  stretch only the one request in flight: at most `freezes` of its latencies, a bound kept in
  the JSON. `--bursts 0` runs every side one after another. Over the rounds: the geometric mean
  of the paired ratios with a 95% confidence interval (a t-interval on the log ratios, n - 1
  degrees of freedom), and their min-max. PASS/FAIL compares the point estimate with the target
  (openvino / benchmark_app <= 1.10, ort-cpu / bare loop <= 1.05).
- An A/A line per backend and batch: bench against bench, two fresh processes per round, with
  the same statistics; its interval is the method's own resolution.

The same file is the entry point of the measuring processes (`--side bench|bare-ort|bare-ov`) and of
the preparation process (`--side prepare`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

MODEL = "simple_cnn"
OPSET = 18
TARGETS = {"openvino": 1.10, "ort-cpu": 1.05}
REFERENCES = {"openvino": "benchmark_app", "ort-cpu": "bare run_with_iobinding loop"}
#: Modules a measuring process must not hold, besides torch: the other runtime.
OTHER_RUNTIME = {"ort-cpu": "openvino", "openvino": "onnxruntime"}
LABELS = {"bench": "bench", "reference": "reference", "bench2": "bench A/A", "bare": "bare loop"}
#: openvino's second reference, with which bench's own overhead is judged, and its target.
BARE_OV = "bare OpenVINO Python loop"
HARNESS_TARGET = 1.05
SCRIPT = os.path.abspath(__file__)
TAIL = 2000  # characters of a failed process's output to show
#: Warm-up calls before each turn of a burst round (bench's own default for a later trial).
BURST_WARMUP_ITERS = 5
#: Timed calls after a burst side's first warm-up, whose median it reports when ready.
READY_CALLS = 20
#: A turn of an openvino round lasts at least this many of its fastest side's calls.
MIN_TURN_CALLS = 50
#: The most of benchmark_app's latencies (as a fraction) that freezes may have stretched.
MAX_QUANTILE_SHIFT = 0.05
#: openvino rounds take turns by freezing benchmark_app's process group (POSIX signals).
CAN_FREEZE = hasattr(os, "killpg") and sys.platform != "win32"


class Failure(Exception):
    """A step failed: printed as one line at the end, exit status 1."""


# --------------------------------------------------------------------------------------------
# Measuring processes (`--side ...`). Each prints one JSON line on stdout.


def _loaded(names: tuple[str, ...]) -> dict[str, bool]:
    return {name: name in sys.modules for name in names}


def _check_clean(forbidden: tuple[str, ...]) -> dict[str, bool]:
    """Which heavy modules this process holds; exit non-zero if any forbidden one is loaded."""
    loaded = _loaded(("torch", "onnxruntime", "openvino", "bench"))
    bad = [name for name in forbidden if loaded[name]]
    if bad:
        raise SystemExit(f"{', '.join(bad)} loaded in the timing process (must not be)")
    return loaded


def _read_inputs(items: list[str]) -> dict:
    import numpy as np

    inputs = {}
    for item in items:
        name, _, path = item.partition("=")
        inputs[name] = np.load(path)
    return inputs


def side_bench(args: argparse.Namespace) -> dict:
    """bench's own path: a worker's allocator policy, the registry's backend class, load/bind,
    `bench.timing.measure`."""
    from bench.allocator import DEFAULT_POLICY, apply
    from bench.backends import BACKENDS, LoadSpec, load_backend_class
    from bench.timing import TimingPolicy, measure

    allocator = apply(DEFAULT_POLICY)  # as bench's workers do, before anything is loaded

    inputs = _read_inputs(args.input)
    backend = load_backend_class(BACKENDS[args.backend].target)()
    spec = LoadSpec(
        source=args.onnx,
        precision="fp32",
        input_shapes={name: tuple(a.shape) for name, a in inputs.items()},
        threads=args.threads,
    )
    policy = TimingPolicy(
        warmup_iters=args.warmup_iters,
        warmup_time=args.warmup_time,
        min_iters=args.min_iters,
        min_time=args.seconds,
        max_time=args.seconds,
    )

    def timed(seconds: float, warmup_iters: int, warmup_time: float, min_iters: int) -> list:
        burst = TimingPolicy(1, warmup_iters, warmup_time, min_iters, seconds, max(seconds, 1e-3))
        return measure(backend.run, burst).samples_ns

    try:
        backend.load(spec)
        settings = backend.describe()
        backend.bind(inputs)
        samples = sorted(_serve(args, timed))
    finally:
        backend.close()
    loaded = _check_clean(("torch", OTHER_RUNTIME[args.backend]))
    return {
        "side": "bench",
        "median_us": _median(samples) / 1e3,
        "samples": len(samples),
        "settings": {**settings, "allocator": allocator.setting()},
        "policy": {
            "warmup_iters": policy.warmup_iters,
            "warmup_time": policy.warmup_time,
            "min_iters": policy.min_iters,
            "min_time": policy.min_time,
            "max_time": policy.max_time,
        },
        "loaded": loaded,
        "pid": os.getpid(),
    }


def side_bare_ort(args: argparse.Namespace) -> dict:
    """The reference for ort-cpu: plain onnxruntime, IO binding, perf_counter_ns. No bench."""
    import onnxruntime as ort

    inputs = _read_inputs(args.input)
    options = ort.SessionOptions()
    if args.threads:
        options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    binding = session.io_binding()
    values = [ort.OrtValue.ortvalue_from_numpy(a, "cpu", 0) for a in inputs.values()]
    for name, value in zip(inputs, values, strict=True):
        binding.bind_ortvalue_input(name, value)
    for output in session.get_outputs():
        binding.bind_output(output.name, "cpu")
    run = session.run_with_iobinding
    clock = time.perf_counter_ns
    warmed = []

    def timed(seconds: float, warmup_iters: int, warmup_time: float, min_iters: int) -> list:
        warmup_end = clock() + int(warmup_time * 1e9)
        warmup = 0
        while warmup < warmup_iters or clock() < warmup_end:
            run(binding)
            warmup += 1
        warmed.append(warmup)
        samples = []
        start = clock()
        duration = int(seconds * 1e9)
        while True:
            t0 = clock()
            run(binding)
            t1 = clock()
            samples.append(t1 - t0)
            if len(samples) >= min_iters and t1 - start >= duration:
                return samples

    samples = sorted(_serve(args, timed))
    warmup = warmed[0]
    threads = session.get_session_options().intra_op_num_threads
    loaded = _check_clean(("torch", "openvino", "bench"))
    return {
        "side": "bare-ort",
        "median_us": _median(samples) / 1e3,
        "samples": len(samples),
        "settings": {
            "runtime": f"onnxruntime {ort.__version__}",
            "providers": ",".join(session.get_providers()),
            "intra_op_num_threads": str(threads) if threads else "0 (ORT default: physical cores)",
        },
        "warmup_iters": warmup,
        "loaded": loaded,
        "pid": os.getpid(),
    }


def side_bare_ov(args: argparse.Namespace) -> dict:
    """The second reference for openvino: plain OpenVINO + numpy + perf_counter_ns, the
    cheapest call its Python API has (the binding's own `InferRequest.infer`, as bench's
    backend calls it), compiled as bench compiles it. No bench. It also keeps OpenVINO's own
    timer of each timed call (`InferRequest.latency`, what benchmark_app reports)."""
    import numpy as np
    import openvino as ov

    try:
        from openvino._pyopenvino import InferRequest as BindingRequest

        infer = BindingRequest.infer
    except ImportError:  # laid out differently: the public call

        def infer(request, inputs, share, decode):  # type: ignore[misc]
            return request.infer()

    inputs = _read_inputs(args.input)
    core = ov.Core()
    model = core.read_model(args.onnx)
    model.reshape({name: list(array.shape) for name, array in inputs.items()})
    config: dict = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if args.threads:
        config["INFERENCE_NUM_THREADS"] = args.threads
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    for name, array in inputs.items():
        request.set_tensor(name, ov.Tensor(np.ascontiguousarray(array)))
    no_inputs: dict = {}
    clock = time.perf_counter_ns
    own_ms: list[float] = []

    def timed(seconds: float, warmup_iters: int, warmup_time: float, min_iters: int) -> list:
        warmup_end = clock() + int(warmup_time * 1e9)
        warmup = 0
        while warmup < warmup_iters or clock() < warmup_end:
            infer(request, no_inputs, True, True)
            warmup += 1
        samples = []
        kept = []
        start = clock()
        duration = int(seconds * 1e9)
        while True:
            t0 = clock()
            infer(request, no_inputs, True, True)
            t1 = clock()
            samples.append(t1 - t0)
            kept.append(request.latency)  # after the timed call, outside it
            if len(samples) >= min_iters and t1 - start >= duration:
                own_ms.extend(kept)
                return samples

    samples = sorted(_serve(args, timed))
    settings = {"runtime": f"openvino {ov.get_version()}"}
    for key in ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS",
                "PERFORMANCE_HINT", "ENABLE_CPU_PINNING"):  # fmt: skip
        value = compiled.get_property(key)
        settings[key] = (value.get_type_name() if hasattr(value, "get_type_name")
                         else str(value).split(".")[-1])  # fmt: skip
    # The ready warm-up's calls are not in own_ms when bursts are taken; only kept turns are.
    own = sorted(own_ms[-len(samples) :]) if args.bursts else sorted(own_ms)
    loaded = _check_clean(("torch", "onnxruntime", "bench"))
    return {
        "side": "bare-ov",
        "median_us": _median(samples) / 1e3,
        "runtime_timer_median_us": _median(own) * 1e3,
        "samples": len(samples),
        "settings": settings,
        "loaded": loaded,
        "pid": os.getpid(),
    }


def _serve(args: argparse.Namespace, timed) -> list[int]:
    """The side's samples: one timed loop of --seconds, or with --bursts K, K short loops on
    the orchestrator's cue (a line `go` on stdin each, `end` to stop), so that the processes
    of a round, all loaded at once, take turns and share the machine's slow phases."""
    if not args.bursts:
        return timed(args.seconds, args.warmup_iters, args.warmup_time, args.min_iters)
    # The first warm-up, not kept; its last calls' median sizes benchmark_app's -niter.
    warm = sorted(timed(0.0, args.warmup_iters, args.warmup_time, READY_CALLS))
    print(json.dumps({"ready": os.getpid(), "warm_median_us": _median(warm) / 1e3}), flush=True)
    samples: list[int] = []
    for line in sys.stdin:
        cue = line.split()
        if not cue or cue[0] != "go":
            break
        # Each turn warms up as a later trial of bench does (the session loaded, idle since
        # its last turn), then times its share of --seconds, or the seconds of its cue.
        turn = float(cue[1]) if len(cue) > 1 else args.seconds / args.bursts
        samples += timed(turn, BURST_WARMUP_ITERS, 0.0, 1)
        print(json.dumps({"burst": len(samples)}), flush=True)
    if not samples:
        raise SystemExit("no turn was given before the end")
    return samples


def side_prepare(args: argparse.Namespace) -> dict:
    """Export the model once with bench's exporter and write each batch's inputs as .npy."""
    from pathlib import Path

    import numpy as np

    from bench.export import export_model
    from bench.models import resolve_model

    out = Path(args.out)
    spec = resolve_model(MODEL)
    export = export_model(spec, spec.build_module(), "auto", OPSET, out / "export")
    if not export.ok:
        raise SystemExit(f"export failed: {export.error}")
    batches = {}
    for batch in args.batch_sizes:
        files = {}
        for name, array in spec.make_inputs({"batch": batch}, seed=0).items():
            path = out / f"{name}-b{batch}.npy"
            np.save(path, np.ascontiguousarray(array))
            files[name] = {"path": str(path), "shape": list(array.shape)}
        batches[str(batch)] = files
    return {
        "onnx": str(export.path),
        "exporter": export.exporter_used,
        "opset": export.opset_actual,
        "sha256": export.sha256,
        "inputs": batches,
    }


def _median(ordered: list[int]) -> float:
    n = len(ordered)
    mid = n // 2
    return float(ordered[mid]) if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --------------------------------------------------------------------------------------------
# Statistics over rounds (this process; no clock).


def t_quantile_975(df: int) -> tuple[float, str]:
    """The 97.5% quantile of Student's t with `df` degrees of freedom, and where it came from:
    scipy.stats.t when scipy is installed (it is not a bench dependency), else a table (df <=
    30, 4 decimals) and a Cornish-Fisher expansion above (error < 1e-4 there)."""
    try:
        from scipy.stats import t
    except ImportError:
        pass
    else:
        return float(t.ppf(0.975, df)), "scipy.stats.t"
    table = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
             2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
             2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)  # fmt: skip
    if df <= len(table):
        return table[df - 1], "table (scipy not installed)"
    z = 1.959963984540054
    value = (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )
    return value, "Cornish-Fisher expansion (scipy not installed)"


def ratio_summary(ratios: list[float]) -> dict:
    """Geometric mean of paired ratios, its 95% t-interval (on the logs), and the min-max."""
    logs = [math.log(r) for r in ratios]
    n = len(logs)
    mean = sum(logs) / n
    summary = {"n": n, "geomean": math.exp(mean), "min": min(ratios), "max": max(ratios)}
    if n >= 2:
        sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1))
        q, source = t_quantile_975(n - 1)
        half = q * sd / math.sqrt(n)
        summary.update(
            ci_low=math.exp(mean - half), ci_high=math.exp(mean + half), t=q, t_source=source
        )
    else:
        summary.update(ci_low=None, ci_high=None, t=None, t_source=None)
    return summary


# --------------------------------------------------------------------------------------------
# Orchestration (this process starts every other one and reads their JSON).


def _run_json(cmd: list[str], what: str, timeout: float) -> dict:
    """Run a measuring or preparing process; its last stdout line is its JSON result."""
    import subprocess

    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=_die_with_parent)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-TAIL:]
        print(tail if isinstance(tail, str) else tail.decode(errors="replace"), file=sys.stderr)
        raise Failure(f"{what} timed out after {timeout:.0f} s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        print(f"--- {what}: stderr (tail) ---\n{proc.stderr[-TAIL:]}", file=sys.stderr)
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise Failure(f"{what} failed (exit {proc.returncode}): {reason}")
    try:
        return json.loads(lines[-1])
    except ValueError:
        print(f"--- {what}: stdout (tail) ---\n{proc.stdout[-TAIL:]}", file=sys.stderr)
        raise Failure(f"{what} printed no JSON result") from None


def _mapped_runtimes(pid: int) -> dict[str, bool] | None:
    """Which of torch / onnxruntime a running process has mapped (Linux; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/maps") as fh:
            maps = fh.read()
    except OSError:
        return None
    return {
        "torch": "libtorch" in maps or "/torch/" in maps,
        "onnxruntime": "onnxruntime" in maps,
    }


def _benchmark_app_cmd(
    exe: str, onnx: str, inputs: dict, limit: list[str], threads
) -> tuple[list[str], str | None]:
    """benchmark_app's command line as a user would write it, and its config file (or None)."""
    import tempfile

    shape = ",".join(f"{n}[{','.join(str(d) for d in v['shape'])}]" for n, v in inputs.items())
    cmd = [exe, "-m", onnx, "-d", "CPU", "-hint", "latency", "-infer_precision", "f32",
           "-shape", shape, *limit]  # fmt: skip
    if not threads:
        return cmd, None
    # benchmark_app accepts -nthreads only with -hint none; a config file keeps the latency
    # hint and sets the property bench sets.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"CPU": {"INFERENCE_NUM_THREADS": str(threads)}}, fh)
    return [*cmd, "-load_config", fh.name], fh.name


def _start_benchmark_app(cmd: list[str]):
    """benchmark_app started in a process group of its own (frozen, resumed and killed as
    one), dying with this script, its output merged and unbuffered (it is a Python program:
    its steps arrive as it reaches them)."""
    import subprocess

    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        preexec_fn=_die_with_parent,
    )  # fmt: skip


def _turn_seconds(seconds: float, bursts: int, warm_medians_us: list[float]) -> float:
    """A turn: `seconds / bursts`, but at least MIN_TURN_CALLS calls at the fastest side's
    warm-up pace (a warm-up in a slow phase reads high). Each freeze of benchmark_app can
    stretch one of its latencies, so few calls a turn would move its median; longer turns
    interleave less."""
    return max(seconds / bursts, MIN_TURN_CALLS * min(warm_medians_us) / 1e6)


def _die_with_parent() -> None:
    """In a child before exec (Linux): killed if this orchestrator dies, even while frozen."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _signal_group(pgid: int, sig: int) -> None:
    """Signal a process group that may have ended meanwhile."""
    import contextlib

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Stopped(Exception):
    """SIGINT, SIGTERM or SIGHUP: unwound, so that no child is left behind (frozen)."""


def _stop_on_signals() -> None:
    import signal

    def stop(signum: int, frame: object) -> None:
        for name in ("SIGTERM", "SIGHUP", "SIGINT"):  # a second one must not cut the cleanup
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        raise Stopped(signal.Signals(signum).name)

    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) != signal.SIG_IGN:
            signal.signal(getattr(signal, name), stop)  # an ignored one (nohup, &) stays so


def _run_benchmark_app(
    exe: str, onnx: str, inputs: dict, seconds: int, threads, what: str, timeout: float = 3600
):
    """benchmark_app as a user runs it; the libraries it maps are read once before it times.
    Killed, with its process group, after `timeout` seconds."""
    import signal
    import threading

    cmd, config_file = _benchmark_app_cmd(exe, onnx, inputs, ["-t", str(seconds)], threads)
    loaded = None
    lines: list[str] = []
    proc = None
    expired = threading.Event()
    try:
        proc = _start_benchmark_app(cmd)

        def expire() -> None:
            expired.set()
            _signal_group(proc.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if loaded is None and "[Step 9/" in line:  # compiled, not yet timing
                loaded = _mapped_runtimes(proc.pid)
        proc.wait()
        watchdog.cancel()
    finally:
        if proc is not None:  # interrupted, or done: its group goes too
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        if config_file:
            os.unlink(config_file)
    if expired.is_set():
        print(f"--- {what}: output (tail) ---\n{''.join(lines)[-TAIL:]}", file=sys.stderr)
        raise Failure(f"{what} timed out after {timeout:.0f} s")
    return _parse_benchmark_app("".join(lines), proc.returncode, cmd, loaded, proc.pid, what)


def _parse_benchmark_app(
    out: str, returncode: int | None, cmd: list[str], loaded, pid: int, what: str, freezes=None
) -> dict:
    """benchmark_app's median latency and effective settings from its output; a failure or a
    runtime mapped into its process raises Failure."""
    import re

    if returncode != 0:
        print(f"--- {what}: output (tail) ---\n{out[-TAIL:]}", file=sys.stderr)
        last = (out.strip().splitlines() or ["no output"])[-1]
        raise Failure(f"{what} failed (exit {returncode}): {last}")
    median = re.search(r"Median:\s+([\d.]+)\s+(ms|us)", out)
    if not median:
        print(f"--- {what}: output (tail) ---\n{out[-TAIL:]}", file=sys.stderr)
        raise Failure(f"{what}: could not read benchmark_app's median latency")
    value = float(median.group(1)) * (1000 if median.group(2) == "ms" else 1)
    step8 = out.split("[Step 8/", 1)[-1].split("[Step 9/", 1)[0]
    settings = dict(re.findall(r"^\[ INFO \]\s+([A-Z_]+):\s+(.*?)\s*$", step8, re.M))
    count = re.search(r"Count:\s+(\d+)", out)
    duration = re.search(r"Duration:\s+([\d.]+)\s+ms", out)
    maximum = re.search(r"Max:\s+([\d.]+)\s+(ms|us)", out)
    if loaded is None:
        loaded = {"torch": None, "onnxruntime": None}
    bad = [name for name, present in loaded.items() if present]
    if bad:
        raise Failure(f"{what}: {', '.join(bad)} mapped into benchmark_app's process")
    samples = int(count.group(1)) if count else None
    result = {
        "side": "benchmark_app",
        "median_us": value,
        "samples": samples,
        # Its own loop's wall time per iteration: the median above excludes the Python call.
        # Frozen between turns, its duration includes the other sides' turns: not kept.
        "wall_per_iteration_us": (
            float(duration.group(1)) * 1000 / samples
            if samples and duration and freezes is None
            else None
        ),
        "max_us": (
            float(maximum.group(1)) * (1000 if maximum.group(2) == "ms" else 1) if maximum else None
        ),
        "settings": settings,
        "command": " ".join(cmd),
        "loaded": loaded,
        "pid": pid,
    }
    if freezes is not None:
        # Each freeze can stretch at most the one request in flight (one infer request, the
        # latency hint): at most `freezes` of `samples` latencies, so the median is read at
        # most that fraction of the distribution away from where it would be.
        result["freezes"] = freezes
        result["median_quantile_shift_at_most"] = freezes / samples if samples else None
    return result


def _start_side(cmd: list[str]) -> tuple:
    """A measuring process that takes turns on its stdin cue; its stderr kept in a temp file.
    It dies with this script (Linux), and ends by itself when its stdin closes."""
    import subprocess
    import tempfile

    err = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by _end_sides
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                            text=True, preexec_fn=_die_with_parent)  # fmt: skip
    return proc, err


def _side_line(started: tuple, what: str, timeout: float) -> dict:
    """The next JSON line of a side; if it ended instead, Failure with its stderr's tail."""
    proc, err = started
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        proc.wait(timeout=timeout)
        err.seek(0)
        tail = err.read()[-TAIL:]
        print(f"--- {what}: stderr (tail) ---\n{tail}", file=sys.stderr)
        reason = (tail.strip().splitlines() or ["no output"])[-1]
        raise Failure(f"{what} failed (exit {proc.returncode}): {reason}")
    return json.loads(line)


def _cue(started: tuple, word: str) -> None:
    """Tell a side to take a turn (`go`, or `go SECONDS`) or to report and exit (`end`)."""
    import contextlib

    stdin = started[0].stdin
    assert stdin is not None
    with contextlib.suppress(BrokenPipeError):  # it ended: reading its line says why
        stdin.write(word + "\n")
        stdin.flush()


def _end_results(procs: dict, order: list[str], line_of, timeout: float) -> dict[str, dict]:
    """Tell each side to report, in order; their results by side, each process waited for."""
    got = {}
    for side in order:
        _cue(procs[side], "end")
        got[side] = line_of(side)
        procs[side][0].wait(timeout=timeout)
    return got


def _end_sides(procs: dict) -> None:
    """Kill whichever side is still running and close their stderr files."""
    for proc, err in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()


def _frozen_turn_round(
    sides: dict[str, list[str]],
    order: list[str],
    bench_app: tuple[str, str, dict, int | None],
    seconds: float,
    bursts: int,
    what: str,
    timeout: float,
) -> tuple[dict[str, dict], int]:
    """An openvino round whose sides take turns although benchmark_app cannot be told to:
    the bench processes are loaded and warmed first and wait for their cue; then benchmark_app
    starts with `-niter` (an iteration count, so that time spent frozen is not cut from its
    run), and from its first timed inference on its process group is frozen (SIGSTOP) except
    during its turns (SIGCONT for seconds/bursts), the order rotating every turn as in the
    ort-cpu rounds. Turns go on until benchmark_app has finished its iterations; every side
    gets the same number. Returns the results by side and the number of turns."""
    import queue
    import signal
    import subprocess
    import threading

    procs: dict[str, tuple] = {}
    app: subprocess.Popen | None = None
    config_file = None

    def line_of(side: str) -> dict:
        return _side_line(procs[side], f"{what} {side}", timeout)

    try:
        warm = []
        for side in order:  # one after another: a warm-up beside a loading process is slow
            if side == "reference":
                continue
            procs[side] = _start_side(sides[side])
            warm.append(line_of(side)["warm_median_us"])  # loaded and warmed up
        # As many iterations as the fastest side's warm calls say fill --seconds (at least
        # 100): a warm-up in a slow phase reads high, and too few iterations mean few turns.
        niter = max(100, math.ceil(seconds * 1e6 / max(min(warm), 1e-3)))
        exe, onnx, inputs, threads = bench_app
        cmd, config_file = _benchmark_app_cmd(exe, onnx, inputs, ["-niter", str(niter)], threads)
        app = _start_benchmark_app(cmd)
        lines: list[str] = []
        arrived: queue.Queue[str | None] = queue.Queue()
        state: dict = {"loaded": None, "ended": False}

        def read_app() -> None:
            assert app is not None and app.stdout is not None
            for text in app.stdout:
                arrived.put(text)
            arrived.put(None)

        threading.Thread(target=read_app, daemon=True).start()

        def take(until: str, seconds_left: float) -> bool:
            """Collect benchmark_app's lines for up to `seconds_left`; True as soon as a line
            containing `until` arrived. Notes when its output has ended."""
            assert app is not None
            deadline = time.monotonic() + seconds_left
            while not state["ended"]:
                try:
                    text = arrived.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    return False
                if text is None:
                    state["ended"] = True
                    break
                lines.append(text)
                if "[Step 9/" in text and state["loaded"] is None:  # compiled, not yet timing
                    state["loaded"] = _mapped_runtimes(app.pid)
                if until in text:
                    return True
            return False

        def app_failed(reason: str) -> Failure:
            assert app is not None
            if not state["ended"]:  # still running: hung, the caller kills it
                return Failure(f"{what} benchmark_app {reason}")
            app.wait(timeout=timeout)
            take("\0", 5.0)  # the rest of its output
            # Raises with its exit status and last line when it failed:
            _parse_benchmark_app("".join(lines), app.returncode, cmd, state["loaded"], app.pid,
                                 f"{what} benchmark_app")  # fmt: skip
            return Failure(f"{what} benchmark_app exited early: {reason}")

        # Until its first timed inference: it has compiled the model, warmed up, and now times.
        if not take("First inference took", timeout):
            raise app_failed(f"did not start timing within {timeout:.0f} s")
        _signal_group(app.pid, signal.SIGSTOP)
        turn_seconds = _turn_seconds(seconds, bursts, warm)
        turns = freezes = 0
        done = False
        max_turns = 50 * bursts
        while not done:
            shift = turns % len(order)
            for side in order[shift:] + order[:shift]:
                if side == "reference":
                    if done:
                        continue
                    _signal_group(app.pid, signal.SIGCONT)
                    if take("[Step 11/", turn_seconds):  # its timed loop has ended
                        done = True  # runs to its end unfrozen, while the others finish
                        continue
                    if state["ended"]:
                        raise app_failed("its output ended before its timed loop did")
                    _signal_group(app.pid, signal.SIGSTOP)
                    freezes += 1
                    continue
                _cue(procs[side], f"go {turn_seconds!r}")
                line_of(side)
            turns += 1
            if not done and turns >= max_turns:
                raise Failure(f"{what}: benchmark_app did not finish {niter} iterations in "
                              f"{turns} turns of {turn_seconds:g} s")  # fmt: skip
        app.wait(timeout=timeout)
        while not state["ended"]:
            take("\0", timeout)
        got = {"reference": _parse_benchmark_app(
            "".join(lines), app.returncode, cmd, state["loaded"], app.pid,
            f"{what} benchmark_app", freezes=freezes)}  # fmt: skip
        got["reference"]["niter"] = niter
        got["reference"]["turn_seconds"] = turn_seconds
        shift = got["reference"]["median_quantile_shift_at_most"]
        if shift is None or shift > MAX_QUANTILE_SHIFT:
            raise Failure(
                f"{what}: benchmark_app was frozen {freezes} times over "
                f"{got['reference']['samples']} requests, so its median could be off by "
                f"{'?' if shift is None else f'{shift:.0%}'} of its distribution (at most "
                f"{MAX_QUANTILE_SHIFT:.0%} is used): give more --seconds or fewer --bursts"
            )
        got.update(_end_results(procs, list(procs), line_of, timeout))
        return got, turns
    finally:
        if app is not None:  # its group too, should it have left a child behind
            _signal_group(app.pid, signal.SIGKILL)
            app.wait()
        _end_sides(procs)
        if config_file:
            os.unlink(config_file)


def _same_settings(backend: str, bench: dict, ref: dict, name: str = "") -> str | None:
    """The reason bench's and the reference's effective settings differ, or None."""
    if backend == "ort-cpu":
        keys = ("intra_op_num_threads", "providers")
    else:
        keys = ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT", "ENABLE_CPU_PINNING")
    for key in keys:
        a, b = bench["settings"].get(key), ref["settings"].get(key)
        if b is None:
            return f"{name or REFERENCES[backend]} did not report {key} (its output not understood)"
        if a != b:
            return f"{key} differs: bench {a}, {name or REFERENCES[backend]} {b} (try --threads)"
    return None


def _us(value: float) -> str:
    """Microseconds to the precision they carry (benchmark_app prints 1 ms as "1.00 ms")."""
    return f"{value:.0f}" if value >= 1000 else f"{value:.1f}" if value >= 100 else f"{value:.2f}"


def _fmt_interval(summary: dict) -> str:
    if summary["ci_low"] is None:
        return "95% CI n/a (one round)"
    return f"95% CI [{summary['ci_low']:.3f}, {summary['ci_high']:.3f}]"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="ort-cpu,openvino", help="ort-cpu and/or openvino")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds (>= 2; default 5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument(
        "--bursts", type=int, default=20, metavar="K",
        help="the round's processes (bench, the bare loop, bench A/A; openvino: and "
        "benchmark_app, frozen outside its turns) take turns of --seconds/K each, sharing the "
        "machine's slow phases (ort-cpu: K turns; openvino: until benchmark_app's -niter "
        "iterations are done); 0: one after another (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="threads for every runtime")
    parser.add_argument("--warmup-iters", type=int, default=100)
    parser.add_argument("--warmup-time", type=float, default=0.5)
    parser.add_argument("--min-iters", type=int, default=100)
    parser.add_argument("--json", default=None, metavar="PATH", help="write every figure here")
    parser.add_argument(
        "--benchmark-app", default=None, metavar="EXE", help="default: on PATH or beside python"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed or a backend skipped"
    )
    # The measuring and preparing processes:
    parser.add_argument(
        "--side", choices=["bench", "bare-ort", "bare-ov", "prepare"], help=argparse.SUPPRESS
    )
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--onnx", help=argparse.SUPPRESS)
    parser.add_argument("--input", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    except ValueError:
        parser.error(f"--batch-sizes: whole numbers, got {args.batch_sizes!r}")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for name in args.backends:
        if name not in TARGETS:
            parser.error(f"--backends: unknown {name!r}; valid: {', '.join(TARGETS)}")
    if not args.backends or not args.batch_sizes or min(args.batch_sizes) < 1:
        parser.error("give at least one backend and batch sizes >= 1")
    if args.side is None and args.rounds < 2:
        parser.error("--rounds must be >= 2 (the interval needs two paired ratios)")
    if not 0 <= args.bursts <= 1000:
        parser.error(f"--bursts must be 0 to 1000, got {args.bursts}")
    _check_ranges(parser, args)
    return args


def _check_ranges(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every number in its range and the --json folder writable, before anything is measured
    (a figure lost at the end to a bad path is a wasted run)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    checks = [
        ("--seconds", args.seconds, 1e-3, 3600.0),
        ("--warmup-time", args.warmup_time, 0.0, 3600.0),
        ("--warmup-iters", args.warmup_iters, 0, 10**7),
        ("--min-iters", args.min_iters, 1, 10**7),
        ("--rounds", args.rounds, 1 if args.side else 2, 1000),
    ]
    if args.threads is not None:
        checks.append(("--threads", args.threads, 1, 4 * (cores or 1)))
    for flag, value, low, high in checks:
        if not (math.isfinite(value) and low <= value <= high):
            parser.error(f"{flag} must be {low:g} to {high:g}, got {value!r}")
    if args.side is None and "openvino" in args.backends and args.benchmark_app:
        found, reason = _find_benchmark_app(args.benchmark_app)
        if found is None:
            parser.error(f"--benchmark-app: {reason}")
    if args.json and args.side is None:
        existed = os.path.exists(args.json)
        try:  # opened now, as it will be at the end (a folder, a missing one, /proc: refused)
            with open(args.json, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            parser.error(f"--json: cannot write {args.json} ({exc.strerror or exc})")
        if not existed:
            os.remove(args.json)


def _find_benchmark_app(given: str | None) -> tuple[str | None, str]:
    import shutil

    if given:
        path = given if os.sep in given else (shutil.which(given) or given)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path, ""
        return None, f"{given} is not an executable file"
    found = shutil.which("benchmark_app")
    beside = os.path.join(os.path.dirname(sys.executable), "benchmark_app")
    if not found and os.access(beside, os.X_OK):
        found = beside
    return (found, "") if found else (None, "benchmark_app not found (pip install openvino)")


def _round(
    args: argparse.Namespace,
    prep: dict,
    backend: str,
    batch: int,
    index: int,
    seconds: float,
    exe: str | None,
) -> dict:
    """One round of one cell: bench, the reference and bench again (A/A), each in a fresh
    process (openvino: also the bare OpenVINO loop). Odd rounds run bench first, even rounds
    the reference first (ABBA); the A/A pair alternates the same way, with the reference
    between its two processes."""
    inputs = prep["inputs"][str(batch)]
    feed = [x for name, v in inputs.items() for x in ("--input", f"{name}={v['path']}")]
    common = ["--onnx", prep["onnx"], *feed, "--seconds", str(seconds), *_timing_flags(args)]
    py = [sys.executable, SCRIPT]
    where = f"({backend}, batch {batch}, round {index + 1})"
    order = ["bench", "reference", "bench2"] if index % 2 == 0 else ["bench2", "reference", "bench"]
    if backend == "openvino":
        order = [*order, "bare"] if index % 2 == 0 else ["bare", *order]
    own = {"bench": ["--side", "bench", "--backend", backend], "bench2": ["--side", "bench",
           "--backend", backend], "bare": ["--side", "bare-ov"], "reference": ["--side",
           "bare-ort"]}  # fmt: skip
    got = {}
    turn_seconds = None
    if backend == "ort-cpu" and args.bursts:
        sides = {side: [*py, *own[side], *common, "--bursts", str(args.bursts)]
                 for side in order}  # fmt: skip
        print(f"  round {index + 1}/{args.rounds} {backend} batch {batch}: taking turns",
              file=sys.stderr, flush=True)  # fmt: skip
        got, turn_seconds = _burst_round(
            sides, order, args.bursts, f"round {where}", _timeout(args, seconds), seconds
        )
        order = [f"{LABELS[side]} x{args.bursts}" for side in order]
    elif backend == "openvino" and args.bursts and CAN_FREEZE:
        sides = {side: [*py, *own[side], *common, "--bursts", str(args.bursts)]
                 for side in order if side != "reference"}  # fmt: skip
        print(f"  round {index + 1}/{args.rounds} {backend} batch {batch}: taking turns",
              file=sys.stderr, flush=True)  # fmt: skip
        got, turns = _frozen_turn_round(
            sides, order, (exe, prep["onnx"], inputs, args.threads), seconds, args.bursts,
            f"round {where}", _timeout(args, seconds),
        )  # fmt: skip
        turn_seconds = got["reference"]["turn_seconds"]
        order = [f"{LABELS[side]} x{turns}" for side in order]
    for side in [] if got else order:
        print(f"  round {index + 1}/{args.rounds} {backend} batch {batch}: {LABELS[side]}",
              file=sys.stderr, flush=True)  # fmt: skip
        if side == "reference" and backend == "openvino":
            got[side] = _run_benchmark_app(
                exe, prep["onnx"], inputs, int(seconds), args.threads, f"benchmark_app {where}",
                _timeout(args, seconds),
            )  # fmt: skip
        else:
            what = f"{'reference' if side == 'reference' else LABELS[side]} side {where}"
            cmd = [*py, *own[side], *common, "--bursts", "0"]
            got[side] = _run_json(cmd, what, _timeout(args, seconds))
    for other in ("reference", "bare"):
        name = BARE_OV if other == "bare" else ""
        differs = other in got and _same_settings(backend, got["bench"], got[other], name)
        if differs:
            raise Failure(f"{where}: {differs}")
    bench, reference, again = (got[k]["median_us"] for k in ("bench", "reference", "bench2"))
    row = {
        "round": index + 1,
        "order": [LABELS.get(side, side) for side in order],
        "bench_us": bench,
        "reference_us": reference,
        "ratio": bench / reference,
        "bench_aa_us": again,
        "aa_ratio": bench / again,
        "turn_seconds": turn_seconds,
        "processes": got,
    }
    if "bare" in got:
        bare = got["bare"]
        row.update(
            bare_us=bare["median_us"],
            harness_ratio=bench / bare["median_us"],
            runtime_timer_us=bare["runtime_timer_median_us"],
            binding_ratio=bare["median_us"] / bare["runtime_timer_median_us"],
        )
    return row


def _burst_round(
    sides: dict[str, list[str]],
    order: list[str],
    bursts: int,
    what: str,
    timeout: float,
    seconds: float | None = None,
) -> tuple[dict[str, dict], float | None]:
    """Start every side of a round at once (fresh processes, each loaded and warmed), then
    give them `bursts` turns each, the order rotating turn by turn. Each turn lasts
    `seconds / bursts`, or MIN_TURN_CALLS calls at the fastest side's warm-up pace if that
    is longer (None: as the sides' own flags say). Their results by side, and the turn."""
    procs: dict[str, tuple] = {}

    def line_of(side: str) -> dict:
        return _side_line(procs[side], f"{what} {side}", timeout)

    try:
        for side in order:
            procs[side] = _start_side(sides[side])
        ready = [line_of(side) for side in order]  # loaded and warmed up
        turn_seconds = None
        if seconds is not None and all("warm_median_us" in line for line in ready):
            turn_seconds = _turn_seconds(
                seconds, bursts, [line["warm_median_us"] for line in ready]
            )
        cue = "go" if turn_seconds is None else f"go {turn_seconds!r}"
        for turn in range(bursts):
            shift = turn % len(order)
            for side in order[shift:] + order[:shift]:
                _cue(procs[side], cue)
                line_of(side)
        return _end_results(procs, order, line_of, timeout), turn_seconds
    finally:
        _end_sides(procs)


def _timing_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--warmup-iters", str(args.warmup_iters), "--warmup-time", str(args.warmup_time),
             "--min-iters", str(args.min_iters)]  # fmt: skip
    return [*flags, "--threads", str(args.threads)] if args.threads else flags


def _timeout(args: argparse.Namespace, seconds: float) -> float:
    return 120 + 10 * (seconds + args.warmup_time)


LOCK_NAME = "bench-fidelity.lock"


def _lock_path() -> str:
    """The machine's lock: /tmp/bench-fidelity.lock whatever TMPDIR says (one machine, one
    check), or $BENCH_FIDELITY_LOCK."""
    import tempfile

    folder = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    return os.environ.get("BENCH_FIDELITY_LOCK") or os.path.join(folder, LOCK_NAME)


def _machine_lock() -> int | None:
    """One fidelity check per machine: an exclusive flock, dropped by the kernel when this
    process ends (however it ends). Two at once would slow each other and neither's figures
    would hold. The file is opened without following a link, must be a regular file, and is
    left writable by every user. None where flock does not exist."""
    try:
        import fcntl
    except ImportError:
        return None
    import stat

    path = _lock_path()
    flags = os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        try:
            fd = os.open(path, os.O_RDWR | flags, 0o666)
        except PermissionError:  # another user's lock: locking needs only reading
            fd = os.open(path, os.O_RDONLY | flags)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError("not a regular file")
    except OSError as exc:
        raise Failure(f"cannot use the lock file {path} ({exc.strerror or exc}): remove it, or "
                      "name another with BENCH_FIDELITY_LOCK") from None  # fmt: skip
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise Failure(f"another fidelity.py (pid {holder}) is measuring on this machine; two at "
                      "once slow each other and neither's figures would hold: wait for it "
                      "to end") from None  # fmt: skip
    try:
        os.fchmod(fd, 0o666)  # the next user may lock it too
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
    except OSError:
        pass  # not ours to write: the lock holds all the same
    return fd


def orchestrate(args: argparse.Namespace) -> int:
    import tempfile

    _machine_lock()  # held until this process ends
    skipped = {}
    exe = None
    if "openvino" in args.backends:
        exe, reason = _find_benchmark_app(args.benchmark_app)
        if exe is None:
            skipped["openvino"] = reason
            print(f"openvino: skipped: {reason}")
    backends = [b for b in args.backends if b not in skipped]
    # benchmark_app run one after another takes whole seconds (-t): both openvino sides
    # measure that long. Taking turns, it runs an iteration count instead (-niter).
    sequential_app = not (args.bursts and CAN_FREEZE)
    seconds = {b: float(max(1, round(args.seconds))) if b == "openvino" and sequential_app
               else args.seconds for b in backends}  # fmt: skip
    report: dict = {
        "model": MODEL,
        "precision": "fp32",
        "method": {
            "rounds": args.rounds,
            "seconds": seconds,
            "order": "ABBA: bench, the reference, bench A/A in odd rounds, the reverse in even "
            "rounds (openvino: the bare loop last, then first); in turns, the order rotates",
            "bursts": {
                "ort-cpu": args.bursts,
                "openvino": 0 if sequential_app else args.bursts,
                "meaning": "ort-cpu rounds: bench, the bare loop and bench A/A loaded at once, "
                "taking this many turns of seconds/bursts each (0: one after another); "
                "openvino rounds: bench and bench A/A loaded at once, then benchmark_app "
                "started with -niter and frozen (SIGSTOP) outside its turns of seconds/bursts, "
                "turns going on until its iterations are done",
            },
            "ratio": "bench / reference, paired within a round",
            "interval": "95% t-interval on the log paired ratios, n - 1 degrees of freedom",
            "aa": "bench / bench, two fresh processes per round, around the reference",
            "warmup_iters": args.warmup_iters,
            "warmup_time": args.warmup_time,
            "min_iters": args.min_iters,
            "threads": args.threads,
        },
        "skipped": skipped,
        "results": [],
    }
    if not backends:
        _write_json(args.json, report)
        return 1 if args.strict else 0

    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        print(f"preparing: exporting {MODEL} (opset {OPSET}) ...", file=sys.stderr, flush=True)
        prep = _run_json(
            [sys.executable, SCRIPT, "--side", "prepare", "--out", tmp,
             "--batch-sizes", ",".join(map(str, args.batch_sizes))],
            "preparation (export)", timeout=1200,
        )  # fmt: skip
        report["export"] = {k: prep[k] for k in ("onnx", "exporter", "opset", "sha256")}
        report["export"]["onnx"] = os.path.basename(prep["onnx"])
        cells = [(b, n) for n in args.batch_sizes for b in backends]
        rounds: dict = {cell: [] for cell in cells}
        # Rounds outermost: each cell's rounds spread over the whole run, not one slow phase.
        for index in range(args.rounds):
            for backend, batch in cells:
                rounds[(backend, batch)].append(
                    _round(args, prep, backend, batch, index, seconds[backend], exe)
                )

    failed = 0
    for backend, batch in cells:
        rows = rounds[(backend, batch)]
        fidelity = ratio_summary([r["ratio"] for r in rows])
        aa = ratio_summary([r["aa_ratio"] for r in rows])
        target = TARGETS[backend]
        verdict = "PASS" if fidelity["geomean"] <= target else "FAIL"
        failed += verdict == "FAIL"
        result = {
            "backend": backend,
            "batch": batch,
            "reference": REFERENCES[backend],
            "target": target,
            "verdict": verdict,
            "ratio": fidelity,
            "aa": aa,
            "rounds": rows,
        }
        if all("bare_us" in row for row in rows):
            harness = ratio_summary([r["harness_ratio"] for r in rows])
            result["harness"] = {
                "reference": BARE_OV,
                "target": HARNESS_TARGET,
                "verdict": "PASS" if harness["geomean"] <= HARNESS_TARGET else "FAIL",
                "ratio": harness,
            }
            failed += result["harness"]["verdict"] == "FAIL"
            result["binding"] = ratio_summary([r["binding_ratio"] for r in rows])
        report["results"].append(result)
    _print_report(report)
    _write_json(args.json, report)
    return 1 if ((failed or skipped) and args.strict) else 0


def _print_report(report: dict) -> None:
    method = report["method"]
    results = report["results"]
    export = report.get("export", {})
    t_source = next((r["ratio"]["t_source"] for r in results), "")
    print(f"\nfidelity: {report['model']} {report['precision']} ({export.get('exporter')} "
          f"opset {export.get('opset')}), {method['rounds']} rounds, seconds per measurement: "
          f"{', '.join(f'{b} {s:g}' for b, s in method['seconds'].items())}")  # fmt: skip
    print("method: every measurement in a fresh process; within a round bench and the "
          "reference run back to back, order alternating (ABBA);")  # fmt: skip

    def turns(backend: str) -> str:
        used = [row["turn_seconds"] for res in results if res["backend"] == backend
                for row in res["rounds"] if row.get("turn_seconds")]  # fmt: skip
        if not used:
            return "?"
        low, high = min(used), max(used)
        return f"{low:.3g} s" if high - low < 1e-9 else f"{low:.3g}-{high:.3g} s"

    ran = {res["backend"] for res in results}
    if "ort-cpu" in ran and method["bursts"]["ort-cpu"]:
        print(f"        ort-cpu: the round's processes loaded at once, taking "
              f"{method['bursts']['ort-cpu']} turns each (rotating order) of {turns('ort-cpu')}"
              )  # fmt: skip
    if "openvino" in ran and method["bursts"].get("openvino"):
        print(f"        openvino: the bench processes loaded first; benchmark_app frozen "
              f"(SIGSTOP) outside its turns of {turns('openvino')}, rotating with theirs, until "
              "its -niter iterations are done")  # fmt: skip
    for backend in sorted(ran):
        if not (method["bursts"].get(backend) or 0):
            print(f"        {backend}: every side one after another (--bursts 0)")
    print("        ratio = bench / reference, paired within a round; 95% CI: t-interval on the "
          f"log ratios, n - 1 df ({t_source})")  # fmt: skip
    print("        A/A = bench / bench (one more fresh bench process per round): the method's own "
          "resolution")  # fmt: skip
    for result in results:
        backend, batch = result["backend"], result["batch"]
        first = result["rounds"][0]["processes"]
        bench_set, ref_set = first["bench"]["settings"], first["reference"]["settings"]
        key = "intra_op_num_threads" if backend == "ort-cpu" else "INFERENCE_NUM_THREADS"
        print(f"\n{backend}  batch {batch}  vs {result['reference']}  (threads: bench "
              f"{bench_set.get(key)}, reference {ref_set.get(key)})")  # fmt: skip
        width = max(28, *(len(",".join(row["order"])) for row in result["rounds"]))
        bare = "harness" in result
        print(f"  {'round':>5}  {'order':<{width}} {'bench µs':>10} {'ref µs':>10} {'ratio':>7}"
              f"   {'A/A µs':>10} {'A/A':>7}"
              + (f"   {'bare µs':>10} {'ratio':>7} {'own µs':>8}" if bare else ""))  # fmt: skip
        for row in result["rounds"]:
            order = ",".join(row["order"])
            print(f"  {row['round']:>5}  {order:<{width}} {_us(row['bench_us']):>10} "
                  f"{_us(row['reference_us']):>10} {row['ratio']:>7.3f}   "
                  f"{_us(row['bench_aa_us']):>10} {row['aa_ratio']:>7.3f}"
                  + (f"   {_us(row['bare_us']):>10} {row['harness_ratio']:>7.3f} "
                     f"{_us(row['runtime_timer_us']):>8}" if bare else ""))  # fmt: skip
        r, aa = result["ratio"], result["aa"]
        print(f"  ratio  geomean {r['geomean']:.3f}  {_fmt_interval(r)}  min-max "
              f"{r['min']:.3f}-{r['max']:.3f}  target <= {result['target']:.2f}  "
              f"{result['verdict']}")  # fmt: skip
        print(f"  A/A    geomean {aa['geomean']:.3f}  {_fmt_interval(aa)}  min-max "
              f"{aa['min']:.3f}-{aa['max']:.3f}")  # fmt: skip
        if bare:
            h, b = result["harness"], result["binding"]
            print(
                f"  bench / {h['reference']}: geomean {h['ratio']['geomean']:.3f}  "
                f"{_fmt_interval(h['ratio'])}  target <= {h['target']:.2f}  {h['verdict']}"
            )
            print(f"  binding: the bare loop's calls / OpenVINO's own timer of the same calls "
                  f"(InferRequest.latency, what benchmark_app reports): geomean "
                  f"{b['geomean']:.3f}  {_fmt_interval(b)}; a Python caller pays it, "
                  f"benchmark_app's median leaves it out")  # fmt: skip
        apps = [row["processes"]["reference"] for row in result["rounds"]]
        if all("freezes" in app for app in apps):
            print(f"  benchmark_app frozen {min(a['freezes'] for a in apps)} to "
                  f"{max(a['freezes'] for a in apps)} times a round, over "
                  f"{min(a['samples'] for a in apps)} to {max(a['samples'] for a in apps)} "
                  f"requests: at most {max(a['median_quantile_shift_at_most'] for a in apps):.2%}"
                  f" of its latencies stretched by a freeze")  # fmt: skip
    if results:
        clean = all(
            p["loaded"].get("torch") is False
            for res in results
            for row in res["rounds"]
            for p in row["processes"].values()
        )
        count = sum(len(row["processes"]) for res in results for row in res["rounds"])
        print(f"\ntiming processes: {count}, each fresh; torch loaded in "
              f"{'none' if clean else 'SOME (see JSON)'} (bench and bare sides: sys.modules; "
              "benchmark_app: its mapped libraries)")  # fmt: skip
    for backend, reason in report["skipped"].items():
        print(f"{backend}: skipped: {reason}")


def _write_json(path: str | None, report: dict) -> None:
    """Write every figure to --json; if that fails at the end (its folder removed, a full
    disk), to a file of its own in the temp folder, and raise Failure saying where."""
    import tempfile

    if not path:
        return
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    except OSError as exc:
        fd, kept = tempfile.mkstemp(prefix="fidelity-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
        raise Failure(f"cannot write --json {path} ({exc.strerror or exc}); the figures are in "
                      f"{kept}") from None  # fmt: skip
    print(f"figures: {path}")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.side is not None:
        sides = {"bench": side_bench, "bare-ort": side_bare_ort, "bare-ov": side_bare_ov,
                 "prepare": side_prepare}  # fmt: skip
        print(json.dumps(sides[args.side](args)))
        return 0
    _stop_on_signals()
    try:
        return orchestrate(args)
    except Failure as exc:
        print(f"fidelity: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Stopped) as exc:
        why = f"{exc}" if isinstance(exc, Stopped) else "SIGINT"
        import signal

        for name in ("SIGTERM", "SIGHUP", "SIGINT"):  # the message and exit, uninterrupted
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        print(f"fidelity: stopped by {why}; every process it started is ended, nothing written",
              file=sys.stderr)  # fmt: skip
        return 130 if why == "SIGINT" else 143 if why == "SIGTERM" else 129


if __name__ == "__main__":
    raise SystemExit(main())
