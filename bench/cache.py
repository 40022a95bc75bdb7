"""The export cache on disk: reuse an entry once it checks out (bench.manifest), else make it.

Check and export happen under a per-entry `fcntl.flock` on `<cache>/.bench-locks/<entry>.lock`,
so a second exporter of the same entry (another `bench run` sharing the cache) waits and then
reuses it. An entry is written in a temporary folder of the cache dir and renamed into place,
so nobody ever sees half an entry. A damaged entry is reported in one line, removed and made
again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.manifest import Damaged, Entry, Outdated, check_entry, refresh_mtimes, write_manifest

LOCKS = ".bench-locks"


@contextlib.contextmanager
def entry_lock(cache_dir: Path, name: str, drop: bool = False) -> Iterator[None]:
    """Hold the exclusive lock of entry `name` (fcntl.flock on `<LOCKS>/<name>.lock`); with
    `drop`, delete the lock file before releasing it (when the entry is removed)."""
    path = cache_dir / LOCKS / f"{name}.lock"
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # the lock folder was removed meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:  # a lock file deleted by its previous holder locks nothing: open it anew
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        if drop:
            with contextlib.suppress(OSError):
                path.unlink()
        os.close(fd)


def temp_folder(cache_dir: Path, name: str) -> Path:
    """A fresh folder in the cache dir to write entry `name` in before it is renamed."""
    return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=cache_dir))


def temp_folders(cache_dir: Path, name: str) -> list[Path]:
    """Leftover temporary folders of entry `name` (stale when its lock is held)."""
    return [p for p in cache_dir.glob(f".{name}.*.tmp") if p.is_dir() and not p.is_symlink()]


def discard(folder: Path) -> None:
    """Remove an entry folder (or a symlink in its place): renamed away first, so nobody
    sees it half deleted."""
    if folder.is_symlink() or not folder.is_dir():
        with contextlib.suppress(FileNotFoundError):
            folder.unlink()
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    os.replace(folder, trash / "old")
    shutil.rmtree(trash, ignore_errors=True)


def publish(tmp: Path, folder: Path) -> None:
    """Rename the finished `tmp` folder to `folder`, atomically. Under the entry's lock the
    target cannot appear meanwhile, unless something bypassed the lock: then the folder found
    there is moved away first."""
    for _ in range(3):
        try:
            os.rename(tmp, folder)
            return
        except OSError:
            if not (folder.exists() or folder.is_symlink()):
                raise
            discard(folder)
    os.rename(tmp, folder)


def reuse(folder: Path, exporter: str, opset: int, say: Callable[[str], None]) -> Entry | None:
    """The entry in `folder` if it checks out; a damaged one is reported and removed."""
    if not (folder.exists() or folder.is_symlink()):
        return None
    try:
        entry, changed = check_entry(folder)
        if (entry.exporter, entry.opset) != (exporter, opset):
            raise Damaged(f"its manifest describes {entry.exporter} op{entry.opset}")
    except Damaged as exc:
        state = "outdated" if isinstance(exc, Outdated) else "damaged"
        say(f"  export cache: {folder.name} is {state} ({exc}); removed, exporting again")
        discard(folder)
        return None
    if changed:
        refresh_mtimes(folder, entry)
    return entry


def obtain(
    cache_dir: Path,
    name: str,
    exporter: str,
    opset: int,
    make: Callable[[Path], Entry],
    say: Callable[[str], None],
) -> tuple[Entry, bool]:
    """Entry `name` and whether it was reused. When it is missing or damaged, `make(folder)`
    writes it in a temporary folder and returns its manifest; an exception from `make`
    propagates and leaves nothing behind."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with entry_lock(cache_dir, name):
        for leftover in temp_folders(cache_dir, name):  # an exporter killed midway
            shutil.rmtree(leftover, ignore_errors=True)
        entry = reuse(cache_dir / name, exporter, opset, say)
        if entry is not None:
            return entry, True
        tmp = temp_folder(cache_dir, name)
        try:
            entry = make(tmp)
            listed = {f.name for f in entry.files}
            for stray in tmp.iterdir():  # an entry holds its manifest's files and nothing else
                if stray.name in listed:
                    continue
                if stray.is_dir() and not stray.is_symlink():
                    shutil.rmtree(stray)
                else:
                    stray.unlink()
            write_manifest(tmp, entry)
            publish(tmp, cache_dir / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return entry, False
