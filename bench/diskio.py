"""Writing into a run folder so that nothing half-written is ever left: appends that are
whole or cut back, and file sets written to temporary names and renamed into place."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class WriteFailed(Exception):
    """A file of the run folder could not be written (disk full, read-only): nothing torn is
    left behind; what was on disk before stays."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(f"could not write {path} ({exc.strerror or exc})")
        self.path = path


def append_whole(fd: int, path: Path, data: bytes, sync: bool = True) -> None:
    """Append `data` to the file open as `fd` (O_APPEND) whole, or not at all: a write that
    fails partway (ENOSPC) is cut back to where the file ended before it."""
    start = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):  # if read-only now, the next run cuts the torn line
            os.ftruncate(fd, start)
        raise WriteFailed(path, exc) from None


def open_append(path: Path) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise WriteFailed(path, exc) from None


def write_atomic(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary name beside it, then rename them all into place; on a
    failure none is renamed and the temporary files are removed (`WriteFailed`)."""
    temps: dict[Path, Path] = {}
    current = next(iter(files), Path("."))
    try:
        for path, data in files.items():
            current = path
            temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            temps[path] = temp
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        for path, temp in temps.items():
            current = path
            os.replace(temp, path)
    except OSError as exc:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                temp.unlink()
        raise WriteFailed(current, exc) from None
