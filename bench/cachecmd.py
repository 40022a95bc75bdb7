"""`bench cache list|verify|clear`: look after the export cache (bench.cache, bench.manifest).

Only folders that look like entries are ever touched: a name `<model>-<exporter>-op<N>-<key>`
and an `export.json` or `model.onnx` inside. Anything else in the cache dir is left alone, so
a `--cache-dir` pointing at the wrong folder cannot wipe it.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.cache import LOCKS, discard, entry_lock, temp_folders
from bench.config import default_cache_dir
from bench.errors import BenchError
from bench.manifest import (
    ENTRY_NAME,
    GRAPH_FILE,
    MANIFEST,
    Damaged,
    Entry,
    Outdated,
    check_entry,
    read_manifest,
    safe_name,
)


@dataclass(frozen=True)
class Found:
    """One entry folder and what checking it said."""

    folder: Path
    model: str
    exporter: str
    opset: int
    entry: Entry | None = None
    problem: Damaged | None = None

    @property
    def state(self) -> str:
        if self.problem is None:
            return "ok"
        return f"{'outdated' if isinstance(self.problem, Outdated) else 'damaged'}: {self.problem}"

    @property
    def size(self) -> int:
        if self.entry is not None:
            return self.entry.size
        try:
            return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        except OSError:  # removed meanwhile
            return 0


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _count(n: int) -> str:
    return f"{n} {'entry' if n == 1 else 'entries'}"


def _cache_dir(given: str | None) -> Path:
    folder = Path(given) if given else default_cache_dir()
    if folder.exists() and not folder.is_dir():
        raise BenchError(f"--cache-dir {folder} is not a folder")
    return folder


def entry_folders(cache_dir: Path) -> Iterator[Path]:
    """The folders of `cache_dir` that look like cache entries, by name."""
    if not cache_dir.is_dir():
        return
    for path in sorted(cache_dir.iterdir()):
        looks_like = ENTRY_NAME.fullmatch(path.name) and path.is_dir() and not path.is_symlink()
        if looks_like and ((path / MANIFEST).is_file() or (path / GRAPH_FILE).is_file()):
            yield path


def _prefix(folder: Path) -> str:
    """The model part of an entry folder's name."""
    match = ENTRY_NAME.fullmatch(folder.name)
    return match["model"] if match else ""


def inspect(folder: Path, full: bool) -> Found:
    """Check one entry folder (`full`: hash every file)."""
    match = ENTRY_NAME.fullmatch(folder.name)
    assert match is not None
    exporter, opset = match["exporter"], int(match["opset"])
    try:
        entry, _ = check_entry(folder, full=full)
        if (entry.exporter, entry.opset) != (exporter, opset):
            raise Damaged(f"its manifest describes {entry.exporter} op{entry.opset}")
    except Damaged as exc:
        return Found(folder, match["model"], exporter, opset, problem=exc)
    return Found(folder, entry.model, exporter, opset, entry)


def cmd_list(cache_dir: Path) -> int:
    found = [inspect(f, full=False) for f in entry_folders(cache_dir)]
    total = sum(f.size for f in found)
    print(f"export cache {cache_dir}: {_count(len(found))}, {_size(total)}")
    rows = []
    for f in found:
        written = f.entry.opset_actual if f.entry else None
        opset = f"op{f.opset}" + (f" (wrote {written})" if written not in (None, f.opset) else "")
        model = f.model if f.model.isprintable() and len(f.model) <= 60 else repr(f.model[:60])
        rows.append((model, f.exporter, opset, _size(f.size), f.state))
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(4)]
    for row in rows:
        print(
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4]
        )
    return 0


def cmd_verify(cache_dir: Path, repair: bool) -> int:
    damaged = outdated = ok = 0
    for folder in entry_folders(cache_dir):
        with entry_lock(cache_dir, folder.name, drop=repair):
            if not folder.is_dir():  # removed by someone else meanwhile
                continue
            found = inspect(folder, full=True)
            if found.problem is None:
                ok += 1
                continue
            if isinstance(found.problem, Outdated):
                outdated += 1
                print(f"outdated: {folder.name}: {found.problem} ('bench cache clear' removes it)")
                continue
            damaged += 1
            print(f"damaged: {folder.name}: {found.problem}")
            if repair:
                discard(folder)
                print(f"  removed {folder.name}; the next run exports it again")
    print(f"export cache {cache_dir}: {ok} ok, {damaged} damaged"
          + (" (removed)" if repair and damaged else "")
          + (f", {outdated} outdated" if outdated else ""))  # fmt: skip
    return 1 if damaged and not repair else 0


def _named(folder: Path) -> Found:
    """An entry folder by its name and, when readable, its manifest's model name; unchecked."""
    match = ENTRY_NAME.fullmatch(folder.name)
    assert match is not None
    try:
        model = read_manifest(folder).model
    except Damaged:
        model = match["model"]
    return Found(folder, model, match["exporter"], int(match["opset"]))


def cmd_clear(cache_dir: Path, model: str | None) -> int:
    found = [_named(f) for f in entry_folders(cache_dir)]
    if model is not None:
        chosen = [f for f in found if model == f.model or safe_name(model) == _prefix(f.folder)]
        if not chosen:
            there = ", ".join(sorted({f.model for f in found})) or "none"
            raise BenchError(f"no cache entry of model {model!r} in {cache_dir} (models: {there})")
        found = chosen
    removed = 0
    for f in found:
        removed += f.size
        with entry_lock(cache_dir, f.folder.name, drop=True):
            for leftover in temp_folders(cache_dir, f.folder.name):
                shutil.rmtree(leftover, ignore_errors=True)
            discard(f.folder)
    if model is None:
        for leftover in cache_dir.glob(".*.tmp") if cache_dir.is_dir() else []:
            name = leftover.name[1:].split(".")[0]
            if ENTRY_NAME.fullmatch(name) and leftover.is_dir() and not leftover.is_symlink():
                with entry_lock(cache_dir, name, drop=True):  # an unfinished export's folder
                    shutil.rmtree(leftover, ignore_errors=True)
        with contextlib.suppress(OSError):  # not there, or a lock still in use
            (cache_dir / LOCKS).rmdir()
    print(f"removed {_count(len(found))} ({_size(removed)}) from {cache_dir}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """Dispatch `bench cache ACTION`."""
    cache_dir = _cache_dir(args.cache_dir)
    try:
        if args.cache_command == "list":
            return cmd_list(cache_dir)
        if args.cache_command == "verify":
            return cmd_verify(cache_dir, args.repair)
        return cmd_clear(cache_dir, args.model)
    except OSError as exc:
        raise BenchError(f"export cache {cache_dir}: {type(exc).__name__}: {exc}") from None
