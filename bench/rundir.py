"""Where a run writes: a fresh, writable run folder."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

from bench.errors import BenchError


def new_run_dir(out: str | None) -> tuple[Path, str]:
    """A fresh run folder (results/<time>-<host> unless `out`), checked to be writable and empty
    of results."""
    run_id = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{socket.gethostname()[:20]}"
    run_dir = Path(out) if out else Path("results") / run_id
    if out is None:
        suffix = 1
        while run_dir.exists():
            suffix += 1
            run_dir = Path("results") / f"{run_id}-{suffix}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BenchError(f"--out: cannot write to {run_dir} ({exc.strerror or exc})") from None
    if (run_dir / "results.jsonl").exists():
        raise BenchError(f"--out: {run_dir} already holds a run; choose another folder")
    return run_dir, run_dir.name
