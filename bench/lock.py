"""One run per run folder: an exclusive `flock` on RUN_DIR/.lock, held for the whole run.

The kernel drops the lock when its process ends, whatever ends it (SIGKILL included), so a
killed run never leaves a stale lock. The file itself stays (removing it would race with a
process that opened it a moment before); its content names the last holder and is shown
only while that holder really holds the lock.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import socket
from pathlib import Path

from bench.errors import BenchError

LOCK_FILE = ".lock"


def _holder_text(fd: int) -> str:
    """The holder a refused caller reads: "pid 123 on host, started ..., command: ..."."""
    try:
        raw = os.pread(fd, 4096, 0)
        info = json.loads(raw.decode("utf-8"))
        return (f"pid {info['pid']} on {info['host']}, started {info['started']}, "
                f"command: {' '.join(info['command'])}")  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it has not recorded itself yet)"


class RunLock:
    """The exclusive lock of one run folder, held until `release` or the process ends."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, command: list[str]) -> None:
        """Take the lock now or raise `BenchError` naming the holder (never waits)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise BenchError(
                f"cannot write to {self.path.parent} ({exc.strerror or exc})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder_text(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise BenchError(f"{self.path.parent} is in use by {holder}; wait for it to end "
                                 "or use another folder") from None  # fmt: skip
            raise BenchError(f"cannot lock {self.path} ({exc.strerror or exc})") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": dt.datetime.now().isoformat(timespec="seconds"), "command": command}  # fmt: skip
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        except OSError:
            pass  # the lock holds without its note (a full disk): refusals say "another process"
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def run_in_progress(run_dir: Path) -> str | None:
    """Who holds `run_dir`'s lock right now ("pid ... command: ..."), or None. Only looks:
    never creates the lock file, works in a read-only folder."""
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _holder_text(fd)
    finally:
        os.close(fd)
    return None
