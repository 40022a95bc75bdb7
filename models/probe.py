"""A model given by reference (`package.module:function`, `path/to/file.py:function`) is first
resolved in a child process of its own: importing it, calling its function and (for a
`(module, inputs)` model without output names) one forward on example inputs to name the
outputs. An import, a call or a forward that aborts, segfaults or hangs costs that model (one
line naming it and the step), never the process that is planning a run; the planning process
imports the model only after the child got through.

    python -m bench.models.probe REF    prints the steps it reaches and the output names
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.errors import BenchError, meaningful_line
from bench.lifeline import PARENT_ENV, die_with_parent, signal_label
from bench.outputcap import OUTPUT_WAIT_S, CappedOutput

#: Set in processes that are themselves isolated (bench's workers, this probe's child): they
#: run the forward in place.
IN_WORKER_ENV = "BENCH_IN_WORKER"
DEFAULT_PROBE_TIMEOUT_S = 600.0
#: The child writes its steps and its answer to this file descriptor, a pipe of their own:
#: nothing the model prints can hide them or be mistaken for them.
REPORT_FD_ENV = "BENCH_PROBE_REPORT_FD"
#: Starts the line that carries the child's answer.
RESULT_MARKER = "bench-probe-result: "
#: Starts a line naming the step the child is about to take (the last one is what failed).
STEP_MARKER = "bench-probe-step: "
#: What is kept of the child's stderr (its last part), for the line that says why it failed.
STDERR_KEPT_BYTES = 64 * 1024
_report_fd: int | None = None
_timeout_s = DEFAULT_PROBE_TIMEOUT_S
_probed: dict[str, list[str]] = {}


#: The child imports torch and builds the module before its forward: this much on top.
IMPORT_ALLOWANCE_S = 60.0


def set_probe_timeout(seconds: float) -> None:
    """How long the probe's child may take: `bench run` gives its --cell-timeout plus
    IMPORT_ALLOWANCE_S, as the reference worker gets for its first job."""
    global _timeout_s
    _timeout_s = seconds


def in_place() -> bool:
    """Whether this process runs the probe's forward itself."""
    return bool(os.environ.get(IN_WORKER_ENV))


def _report(line: str) -> None:
    if _report_fd is not None:
        os.write(_report_fd, f"{line}\n".encode())


def step(what: str) -> None:
    """Say, in the probe's child, which step comes next (elsewhere: nothing)."""
    _report(f"{STEP_MARKER}{what}")


def _last_step(report: str, ref: str) -> str:
    steps = [line for line in report.splitlines() if line.startswith(STEP_MARKER)]
    return f"{ref}: {steps[-1][len(STEP_MARKER) :]}" if steps else f"{ref}: starting Python"


def _how(returncode: int) -> str:
    name = signal_label(returncode)
    return f"killed its process ({name})" if name else f"ended its process with status {returncode}"


def probe_names_in_child(ref: str) -> list[str]:
    """The output names of `ref`, resolved in a child process (remembered for this process).
    A child that dies or hangs is one `BenchError` line naming `ref` and the step it was in."""
    if ref in _probed:
        return _probed[ref]
    report, stderr = CappedOutput(None), CappedOutput(None, tail_bytes=STDERR_KEPT_BYTES)
    env = {**os.environ, IN_WORKER_ENV: "1", PARENT_ENV: str(os.getpid()),
           REPORT_FD_ENV: str(report.write_fd),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # fmt: skip
    try:
        # The model's own prints go nowhere (a forward may print without end); stderr is
        # drained within a cap, kept for the line that says why the child failed.
        proc = subprocess.Popen([sys.executable, "-m", "bench.models.probe", ref], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr.write_fd, pass_fds=[report.write_fd])  # fmt: skip
    finally:
        report.child_started()
        stderr.child_started()
    try:
        returncode = proc.wait(timeout=_timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        report.wait(OUTPUT_WAIT_S)
        raise BenchError(f"{_last_step(report.tail(STDERR_KEPT_BYTES), ref)} gave no result "
                         f"within {_timeout_s:g} s (--cell-timeout and {IMPORT_ALLOWANCE_S:g} s "
                         "to import torch); it was stopped") from None  # fmt: skip
    except BaseException:  # Ctrl-C in this process: the child goes too, as with subprocess.run
        proc.kill()
        proc.wait()
        raise
    report.wait(OUTPUT_WAIT_S)
    stderr.wait(OUTPUT_WAIT_S)
    said, errors = report.tail(STDERR_KEPT_BYTES), stderr.tail(STDERR_KEPT_BYTES)
    if returncode == 2 and errors.strip():  # the child's own one-line BenchError
        raise BenchError(errors.strip().splitlines()[-1])
    what = _last_step(said, ref)
    if returncode != 0:
        tail = meaningful_line(errors) if errors.strip() else ""
        raise BenchError(f"{what} {_how(returncode)}" + (f": {tail}" if tail else ""))
    found = [line for line in said.splitlines() if line.startswith(RESULT_MARKER)]
    if not found:  # os._exit(0) inside the forward, say
        raise BenchError(f"{what} ended its process (status 0) before it returned")
    _probed[ref] = [str(n) for n in json.loads(found[-1][len(RESULT_MARKER) :])]
    return _probed[ref]


def main(argv: list[str]) -> int:
    from bench.models import probe as this  # under `-m` this file is __main__, not the module
    from bench.models import resolve_model

    die_with_parent()
    this._report_fd = int(os.environ.get(REPORT_FD_ENV, "1"))  # by hand: to stdout
    try:
        spec = resolve_model(argv[0])
    except BenchError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    this._report(f"{RESULT_MARKER}{json.dumps(list(spec.output_names))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
