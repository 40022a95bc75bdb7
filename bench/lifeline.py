"""What every child process bench starts shares: it dies with the process that started it,
and its end is named the same way everywhere (a signal's name, or an exit status)."""

from __future__ import annotations

import contextlib
import os
import signal

#: The pid of the process that started this one (bench's workers, a model probe's child).
PARENT_ENV = "BENCH_PARENT_PID"


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (any signal, SIGKILL included); a
    parent that died before this call (PARENT_ENV names the one that started us) means exit
    now."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    expected = os.environ.get(PARENT_ENV, "")
    if expected.isdigit() and os.getppid() != int(expected):
        os._exit(1)


def signal_label(returncode: int) -> str | None:
    """`SIGABRT` for a process killed by that signal (`signal 99` for an unnamed one); None
    for one that exited on its own."""
    if returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
