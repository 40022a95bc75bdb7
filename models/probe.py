"""One forward of a `(module, inputs)` model on example inputs, to name its outputs, run in a
child process of its own: a forward that aborts, segfaults or hangs costs that model (one
line naming it), never the process that is planning a run.

    python -m bench.models.probe REF    prints the output names as a JSON list
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


def _how(returncode: int) -> str:
    name = signal_label(returncode)
    return f"killed its process ({name})" if name else f"ended its process with status {returncode}"


def probe_names_in_child(ref: str) -> list[str]:
    """The output names of `ref`, from a child process (remembered for this process)."""
    if ref in _probed:
        return _probed[ref]
    env = {**os.environ, IN_WORKER_ENV: "1", PARENT_ENV: str(os.getpid()),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # fmt: skip
    what = f"{ref}: forward() on example inputs (batch 2)"
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.models.probe", ref], env=env,
                              capture_output=True, text=True, timeout=_timeout_s)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} gave no result within {_timeout_s:g} s (--cell-timeout and "
                         f"{IMPORT_ALLOWANCE_S:g} s to import torch); it was stopped") from None  # fmt: skip
    if proc.returncode == 2 and proc.stderr.strip():  # the child's own one-line BenchError
        raise BenchError(proc.stderr.strip().splitlines()[-1])
    if proc.returncode != 0:
        tail = meaningful_line(proc.stderr) if proc.stderr.strip() else ""
        raise BenchError(f"{what} {_how(proc.returncode)}" + (f": {tail}" if tail else ""))
    found = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if not found:  # os._exit(0) inside the forward, say
        raise BenchError(f"{what} ended its process (status 0) before it returned")
    _probed[ref] = [str(n) for n in json.loads(found[-1][len(RESULT_MARKER) :])]
    return _probed[ref]


def main(argv: list[str]) -> int:
    from bench.models import resolve_model

    die_with_parent()
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
