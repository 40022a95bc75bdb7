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

#: Set in processes that are themselves isolated (bench's workers, this probe's child): they
#: run the forward in place.
IN_WORKER_ENV = "BENCH_IN_WORKER"
DEFAULT_PROBE_TIMEOUT_S = 600.0
#: Starts the child's answer on a line of its own, whatever the model printed before it.
RESULT_MARKER = "bench-probe-result: "
#: Starts a line naming the step the child is about to take (the last one is what failed).
STEP_MARKER = "bench-probe-step: "
_reporting_steps = False
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


def step(what: str) -> None:
    """Say, in the probe's child, which step comes next (elsewhere: nothing)."""
    if _reporting_steps:
        print(f"\n{STEP_MARKER}{what}", flush=True)


def _last_step(stdout: str | bytes | None, ref: str) -> str:
    if isinstance(stdout, bytes):
        stdout = stdout.decode(errors="replace")
    steps = [line for line in (stdout or "").splitlines() if line.startswith(STEP_MARKER)]
    return f"{ref}: {steps[-1][len(STEP_MARKER) :]}" if steps else f"{ref}: starting Python"


def _how(returncode: int) -> str:
    name = signal_label(returncode)
    return f"killed its process ({name})" if name else f"ended its process with status {returncode}"


def probe_names_in_child(ref: str) -> list[str]:
    """The output names of `ref`, resolved in a child process (remembered for this process).
    A child that dies or hangs is one `BenchError` line naming `ref` and the step it was in."""
    if ref in _probed:
        return _probed[ref]
    env = {**os.environ, IN_WORKER_ENV: "1", PARENT_ENV: str(os.getpid()),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # fmt: skip
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.models.probe", ref], env=env,
                              capture_output=True, text=True, timeout=_timeout_s)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{_last_step(exc.stdout, ref)} gave no result within {_timeout_s:g} s "
                         f"(--cell-timeout and {IMPORT_ALLOWANCE_S:g} s to import torch); it "
                         "was stopped") from None  # fmt: skip
    if proc.returncode == 2 and proc.stderr.strip():  # the child's own one-line BenchError
        raise BenchError(proc.stderr.strip().splitlines()[-1])
    what = _last_step(proc.stdout, ref)
    if proc.returncode != 0:
        tail = meaningful_line(proc.stderr) if proc.stderr.strip() else ""
        raise BenchError(f"{what} {_how(proc.returncode)}" + (f": {tail}" if tail else ""))
    found = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if not found:  # os._exit(0) inside the forward, say
        raise BenchError(f"{what} ended its process (status 0) before it returned")
    _probed[ref] = [str(n) for n in json.loads(found[-1][len(RESULT_MARKER) :])]
    return _probed[ref]


def main(argv: list[str]) -> int:
    from bench.models import probe as this  # under `-m` this file is __main__, not the module
    from bench.models import resolve_model

    die_with_parent()
    this._reporting_steps = True
    try:
        spec = resolve_model(argv[0])
    except BenchError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    # On a line of its own: the model may have printed without a newline.
    print(f"\n{RESULT_MARKER}{json.dumps(list(spec.output_names))}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
