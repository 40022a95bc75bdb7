"""Where a run writes: a fresh run folder, claimed under its lock before anything is written."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

from bench.errors import BenchError
from bench.lock import RunLock
from bench.results import RESULTS_FILE, RUN_FILE


def _fresh_default(run_id: str) -> Path:
    """results/<run-id>, or -2, -3 ...: made with mkdir, so two runs never get one folder."""
    suffix = 1
    while True:
        run_dir = Path("results") / (run_id if suffix == 1 else f"{run_id}-{suffix}")
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
            return run_dir
        except FileExistsError:
            suffix += 1
        except OSError as exc:
            raise BenchError(f"--out: cannot make {run_dir} ({exc.strerror or exc})") from None


def new_run_dir(out: str | None, command: list[str]) -> tuple[Path, str, RunLock]:
    """A fresh run folder (results/<time>-<host> unless `out`) and its lock, taken before
    anything is written: of two runs started on one folder at once, one runs and the other
    is refused without touching it. A folder that already holds a run is refused."""
    run_id = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{socket.gethostname()[:20]}"
    if out is None:
        run_dir = _fresh_default(run_id)
    else:
        if not out.strip():
            raise BenchError("--out: give a folder name (empty text would write into the "
                             "current folder)")  # fmt: skip
        run_dir = Path(out)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BenchError(f"--out: cannot write to {run_dir} ({exc.strerror or exc})") from None
    lock = RunLock(run_dir)
    try:
        lock.acquire(command)
    except BenchError as exc:
        raise BenchError(f"--out: {exc}") from None
    held = [name for name in (RESULTS_FILE, RUN_FILE) if (run_dir / name).exists()]
    if held:
        lock.release()
        raise BenchError(f"--out: {run_dir} already holds a run ({held[0]}); finish it with "
                         f"bench run --resume {run_dir}, or choose another folder")  # fmt: skip
    return run_dir, run_dir.name, lock
