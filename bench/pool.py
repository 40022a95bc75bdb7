"""Parent side of worker isolation: start a worker, hand it cells, survive its death."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from bench.allocator import DEFAULT_POLICY
from bench.control import BLAS_TIMEOUT_ENV, QUIET_BLAS_TIMEOUT
from bench.jobs import Job, Reply
from bench.lifeline import PARENT_ENV, signal_label
from bench.models.probe import IN_WORKER_ENV
from bench.outputcap import OUTPUT_WAIT_S, CappedOutput

STDERR_TAIL_CHARS = 2000
STDERR_TAIL_MARK = "; stderr tail:"


class WorkerLost(Exception):
    """The worker died or ran past its time: the cell is `crashed` or `timeout`."""

    def __init__(self, status: str, message: str, headline: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        #: What happened in one line, without the stderr tail the message may carry.
        self.headline = headline or message.split(STDERR_TAIL_MARK)[0].splitlines()[0]


def _signal_name(returncode: int) -> str:
    name = signal_label(returncode)
    return f"killed by {name}" if name else f"exited with status {returncode}"


class Worker:
    """One worker process; `execute` runs a cell in it. Restarted by the caller on loss."""

    def __init__(
        self, log_path: Path, cpus: str | None = None, allocator: str = DEFAULT_POLICY
    ) -> None:
        self.log_path = log_path
        self._asked = False
        self._said_dropped = False
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        # Same import path as the parent, so user models and test backends resolve alike.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env[IN_WORKER_ENV] = "1"  # isolated already: a model's probe forward runs in place
        env[PARENT_ENV] = str(os.getpid())  # a parent gone before the worker started: it exits
        # numpy's OpenBLAS threads (the control workload's) sleep as soon as their work is
        # done; by default they spin about 0.1 s, into the next cell's trial in another worker.
        env.setdefault(BLAS_TIMEOUT_ENV, QUIET_BLAS_TIMEOUT)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = CappedOutput(log_path)  # a model printing in its forward fills no disk
        args = [str(child_sock.fileno()), cpus or "", allocator]
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.worker", *args],
                pass_fds=[child_sock.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=self._log.write_fd,
                stderr=self._log.write_fd,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the parent only
            )
        finally:
            self._log.child_started()
        child_sock.close()
        self._conn = Connection(os.dup(parent_sock.fileno()))
        parent_sock.close()
        self._hello(timeout=120.0)

    def _hello(self, timeout: float) -> None:
        if not self._conn.poll(timeout):
            self.kill()
            raise WorkerLost("crashed", f"worker did not start within {timeout:.0f}s")
        try:
            self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._lost("crashed") from exc

    def stderr_tail(self) -> str:
        """The last of the worker's output; once it died, all it wrote (waited for briefly:
        a process it started may still hold the pipe)."""
        if self.process.poll() is not None:
            self._log.wait(OUTPUT_WAIT_S)
        return self._log.tail(STDERR_TAIL_CHARS).strip()

    def _lost(self, status: str, detail: str = "") -> WorkerLost:
        self.kill()
        code = self.process.returncode
        how = detail or (_signal_name(code) if code is not None else "lost")
        tail = self.stderr_tail()
        headline = f"worker {how}"
        return WorkerLost(
            status, headline + (f"{STDERR_TAIL_MARK}\n{tail}" if tail else ""), headline
        )

    def execute(self, job: Job, timeout: float) -> Reply:
        """Run one job; raise `WorkerLost` if the worker dies or exceeds `timeout` seconds."""
        try:
            self._conn.send(job)
            if not self._conn.poll(timeout):
                raise self._lost("timeout", f"gave no result within {timeout:g}s and was killed")
            reply: Reply = self._conn.recv()
            return reply
        except (EOFError, OSError, BrokenPipeError) as exc:
            raise self._lost("crashed") from exc

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._log.wait(OUTPUT_WAIT_S)  # the log's last lines, and its note of what it left out
        self._conn.close()
        if self._log.dropped and not self._said_dropped:
            self._said_dropped = True
            print(f"bench: warning: {self.log_path.name}: the worker wrote {self._log.dropped:,} "
                  "bytes more than its log keeps (a model that prints in its forward is timed "
                  "with its printing)", file=sys.stderr)  # fmt: skip

    def ask_to_exit(self) -> None:
        """Ask the worker to exit, without waiting (`close` waits): several workers asked
        first, then closed, wind down side by side instead of one after another."""
        if self.process.poll() is None and not self._asked:
            self._asked = True
            with contextlib.suppress(OSError):
                self._conn.send(None)

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within 10 s."""
        self.ask_to_exit()
        if self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        self.kill()
