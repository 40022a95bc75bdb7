"""A child process's output, drained through a pipe and kept within a size cap.

A model that prints in its forward prints on every timed call: unbounded, a worker's log grew
to hundreds of megabytes in one run and could fill the disk the results are written to.
`CappedOutput` reads the child's end of a pipe on a thread of its own (the child never blocks
on a full pipe), writes the first `head_bytes` to the log, then only counts what it drops;
the last `tail_bytes` are always kept in memory, for crash messages, and written after a
line that says how much was left out.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import BinaryIO

#: What a worker's log keeps: its first 8 MiB and its last 256 KiB.
LOG_HEAD_BYTES = 8 * 1024 * 1024
LOG_TAIL_BYTES = 256 * 1024
_CHUNK = 65536
#: How long a finished child's last output is waited for (a process it started may still
#: hold the pipe open).
OUTPUT_WAIT_S = 2.0


class CappedOutput:
    """Drain a pipe into `path` (or into memory only, with `path=None`) within a cap."""

    def __init__(
        self,
        path: Path | None,
        head_bytes: int = LOG_HEAD_BYTES,
        tail_bytes: int = LOG_TAIL_BYTES,
    ) -> None:
        self._read_fd, self.write_fd = os.pipe()
        self._file: BinaryIO | None = open(path, "ab") if path else None  # noqa: SIM115
        self._logging = path is not None
        self._head_bytes = self._head_left = head_bytes
        self._tail_bytes = tail_bytes
        self._tail = bytearray()
        self.dropped = 0
        self._thread = threading.Thread(target=self._drain, name="bench-output", daemon=True)
        self._thread.start()

    def child_started(self) -> None:
        """Close this process's copy of the write end: the child holds its own, so the pipe
        ends when the child (and whatever it started with the pipe) is gone."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def _drain(self) -> None:
        try:
            while chunk := os.read(self._read_fd, _CHUNK):
                self._take(chunk)
        except OSError:
            pass
        finally:
            os.close(self._read_fd)
            self._finish_file()

    def _take(self, chunk: bytes) -> None:
        if self._file is not None and self._head_left > 0:
            kept = chunk[: self._head_left]
            self._head_left -= len(kept)
            self._write(kept)
            self.dropped += len(chunk) - len(kept)
        elif self._logging:
            self.dropped += len(chunk)
        self._tail += chunk
        if len(self._tail) > self._tail_bytes:
            del self._tail[: len(self._tail) - self._tail_bytes]

    def _write(self, data: bytes) -> None:
        if self._file is None:
            return
        try:
            self._file.write(data)
            self._file.flush()
        except OSError:  # a full disk: the log stops, the run does not
            self._close_file()

    def _finish_file(self) -> None:
        if self._file is not None and self.dropped:
            kept = bytes(self._tail[-min(self.dropped, self._tail_bytes) :])
            note = (
                f"\n[bench: {self.dropped} bytes of output were left out of this log after its "
                f"first {self._head_bytes} bytes; the last {len(kept)} follow]\n"
            )
            end = f"\n[bench: end of the log; {self.dropped} bytes were left out above]\n"
            self._write(note.encode() + kept + end.encode())
        self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def wait(self, timeout: float) -> bool:
        """Wait for the pipe's end (the child gone); whether it ended within `timeout` s."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def tail(self, chars: int) -> str:
        """The last `chars` characters of the output, as far as it has been read."""
        return bytes(self._tail[-chars:]).decode(errors="replace")
