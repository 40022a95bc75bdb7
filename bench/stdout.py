"""stdout that keeps a command going when its reader goes away (`bench run ... | head -2`):
after the pipe closes, what would have been printed goes nowhere, and the run measures,
records and reports as it would have; the files are the result, not the terminal."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, TextIO


class ClosedPipeSafe:
    """Wraps a text stream: the first BrokenPipeError points its descriptor at /dev/null (so
    the interpreter's own last flush succeeds too) and every later write is dropped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, isatty, ...
        return getattr(self._stream, name)


def guard_stdout() -> None:
    """Install the wrapper on sys.stdout, once."""
    if not isinstance(sys.stdout, ClosedPipeSafe) and sys.stdout is not None:
        sys.stdout = ClosedPipeSafe(sys.stdout)  # type: ignore[assignment]
