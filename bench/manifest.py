"""An export cache entry's manifest (`export.json`): every file with size, mtime_ns, sha256.

An entry is `<model>-<exporter>-op<N>-<key>/` holding `model.onnx`, its external-data files
and the manifest. The manifest holds names relative to the entry only, so a cache can be
moved or copied. Checking an entry trusts a file whose size and mtime_ns equal the manifest's
and hashes any other; a full check hashes every file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST = "export.json"
GRAPH_FILE = "model.onnx"
FORMAT = "bench-export-entry/1"
EXPORTERS = ("dynamo", "torchscript")
ENTRY_NAME = re.compile(
    r"(?P<model>[A-Za-z0-9_-]{1,60})-(?P<exporter>dynamo|torchscript)-op(?P<opset>\d{1,3})"
    r"-(?P<key>[0-9a-f]{16})"
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Damaged(Exception):
    """An entry that cannot be trusted; the message says what is wrong."""


class Outdated(Damaged):
    """An entry written by an older bench (absolute paths, no file list)."""


@dataclass(frozen=True)
class FileInfo:
    """One file of an entry, as the manifest lists it."""

    name: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class Entry:
    """A checked entry: what its manifest says."""

    model: str
    exporter: str
    opset: int
    opset_actual: int
    export_s: float | None
    files: tuple[FileInfo, ...]

    @property
    def sha256(self) -> str:
        return files_sha256(self.files)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def safe_name(model: str) -> str:
    """A model name as it appears in entry names."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in model)[:60]


def entry_name(model: str, exporter: str, opset: int, key: str) -> str:
    return f"{safe_name(model)}-{exporter}-op{opset}-{key}"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_sha256(files: Iterable[tuple[str, str]]) -> str:
    """The hash of a whole model: sha256 over its sorted (relative name, file sha256) pairs,
    one `name NUL sha256 LF` line each; the graph file counts as `model.onnx`."""
    digest = hashlib.sha256()
    for name, sha in sorted(files):
        digest.update(f"{name}\0{sha}\n".encode())
    return digest.hexdigest()


def files_sha256(files: Iterable[FileInfo]) -> str:
    """The model hash of these files (`model_sha256`)."""
    return model_sha256((f.name, f.sha256) for f in files)


def _check_name(name: str, where: str) -> None:
    """Refuse a file name that is not a plain relative path inside its folder."""
    parts = PurePosixPath(name).parts
    if not name or "\\" in name or "\0" in name or PurePosixPath(name).is_absolute():
        raise Damaged(f"{where}: file name {name[:80]!r} is not a relative path")
    if any(p in ("..", ".") for p in parts) or name != str(PurePosixPath(*parts)):
        raise Damaged(f"{where}: file name {name[:80]!r} leaves the entry or is not normalized")


def external_files(graph: Path) -> list[str]:
    """The external-data locations the ONNX file at `graph` refers to, relative to its folder."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors

    try:
        model = onnx.load(str(graph), load_external_data=False)
    except Exception as exc:
        raise Damaged(f"{graph.name}: not a readable ONNX file ({type(exc).__name__})") from None
    names = set()
    for tensor in _get_all_tensors(model):
        for item in tensor.external_data:
            if item.key == "location":
                _check_name(item.value, graph.name)
                if item.value in (GRAPH_FILE, MANIFEST):
                    raise Damaged(f"external data named {item.value!r}")
                names.add(item.value)
    return sorted(names)


def model_files(graph: Path) -> dict[str, Path]:
    """Every file of the model at `graph`: itself as `model.onnx`, then its external data."""
    return {GRAPH_FILE: graph, **{n: graph.parent / n for n in external_files(graph)}}


def describe(files: dict[str, Path]) -> tuple[FileInfo, ...]:
    """Size, mtime_ns and sha256 of each file, sorted by name."""
    infos = []
    for name, path in sorted(files.items()):
        st = path.stat()
        infos.append(FileInfo(name, st.st_size, st.st_mtime_ns, file_sha256(path)))
    return tuple(infos)


def file_records(files: Iterable[FileInfo]) -> tuple[dict[str, object], ...]:
    """The files as run records show them: name, size, sha256."""
    return tuple({"name": f.name, "size": f.size, "sha256": f.sha256} for f in files)


def describe_model(graph: Path) -> tuple[FileInfo, ...]:
    """`describe` every file of the model at `graph` (`model_files`)."""
    return describe(model_files(graph))


def write_manifest(folder: Path, entry: Entry) -> None:
    """Write `entry` as the folder's manifest, atomically."""
    data = {"format": FORMAT, **asdict(entry)}
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def _typed(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise Damaged(f"{MANIFEST}: {key!r} is missing or not of the right type")
    return value


def read_manifest(folder: Path) -> Entry:
    """The manifest of `folder`, validated; raises `Damaged` (or `Outdated`)."""
    try:
        data = json.loads((folder / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise Damaged(f"{MANIFEST} is missing") from None
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise Damaged(f"{MANIFEST} is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise Damaged(f"{MANIFEST} is not a JSON object")
    if data.get("format") != FORMAT:
        if "format" not in data and "path" in data:
            raise Outdated("written by an older bench (absolute paths, no file list)")
        raise Damaged(f"{MANIFEST}: unknown format {str(data.get('format'))[:40]!r}")
    files = []
    for item in _typed(data, "files", list):
        if not isinstance(item, dict):
            raise Damaged(f"{MANIFEST}: a file entry is not an object")
        name = _typed(item, "name", str)
        _check_name(name, MANIFEST)
        size, mtime = _typed(item, "size", int), _typed(item, "mtime_ns", int)
        sha = _typed(item, "sha256", str)
        if size < 0 or not _SHA256.fullmatch(sha):
            raise Damaged(f"{MANIFEST}: bad size or sha256 for {name!r}")
        files.append(FileInfo(name, size, mtime, sha))
    names = [f.name for f in files]
    if GRAPH_FILE not in names or len(set(names)) != len(names):
        raise Damaged(f"{MANIFEST}: the file list lacks {GRAPH_FILE} or repeats a name")
    export_s = data.get("export_s")
    if export_s is not None and (
        not isinstance(export_s, int | float)
        or isinstance(export_s, bool)
        or not 0 <= export_s < 1e9
    ):
        raise Damaged(f"{MANIFEST}: 'export_s' is not a number")
    exporter = _typed(data, "exporter", str)
    if exporter not in EXPORTERS:
        raise Damaged(f"{MANIFEST}: unknown exporter {exporter[:40]!r}")
    return Entry(
        model=_typed(data, "model", str),
        exporter=exporter,
        opset=_typed(data, "opset", int),
        opset_actual=_typed(data, "opset_actual", int),
        export_s=export_s,
        files=tuple(sorted(files, key=lambda f: f.name)),
    )


def check_entry(folder: Path, full: bool = False) -> tuple[Entry, bool]:
    """The entry in `folder` and whether its mtimes changed; raises `Damaged`.

    Fast path: a file whose size and mtime_ns equal the manifest's is trusted unread. Any
    other file is hashed, and then (or with `full`) the graph's external-data references
    must be exactly the manifest's other files."""
    if folder.is_symlink() or not folder.is_dir():
        raise Damaged("not a folder")
    entry = read_manifest(folder)
    root = folder.resolve()
    # Cheap and always: a file the manifest does not list (weights it "forgot") is damage,
    # since the graph may load it unverified.
    unlisted = sorted({p.name for p in folder.iterdir()} - {f.name for f in entry.files}
                      - {MANIFEST})  # fmt: skip
    if unlisted:
        raise Damaged(f"{unlisted[0]} is in the entry but not in its manifest")
    hashed = full
    changed = False
    for info in entry.files:
        path = folder / info.name
        try:
            st = path.lstat()
        except OSError:
            raise Damaged(f"{info.name} is missing") from None
        if not stat.S_ISREG(st.st_mode) or not path.resolve().is_relative_to(root):
            raise Damaged(f"{info.name} is not a regular file inside the entry")
        if st.st_size != info.size:
            raise Damaged(f"{info.name}: {st.st_size} bytes, the manifest says {info.size}")
        if full or st.st_mtime_ns != info.mtime_ns:
            hashed = True
            changed = changed or st.st_mtime_ns != info.mtime_ns
            try:
                digest = file_sha256(path)
            except OSError as exc:
                raise Damaged(f"{info.name}: unreadable ({type(exc).__name__})") from None
            if digest != info.sha256:
                raise Damaged(f"{info.name}: sha256 differs from the manifest")
    if hashed:
        listed = sorted(f.name for f in entry.files if f.name != GRAPH_FILE)
        if external_files(folder / GRAPH_FILE) != listed:
            raise Damaged(f"{GRAPH_FILE} refers to other external-data files than the manifest")
    return entry, changed


def refresh_mtimes(folder: Path, entry: Entry) -> None:
    """After a successful hash: record the files' current mtimes, so the next reuse is fast.
    Best effort (a read-only cache stays as it is)."""
    with contextlib.suppress(OSError):
        files = tuple(
            replace(f, mtime_ns=(folder / f.name).stat().st_mtime_ns) for f in entry.files
        )
        write_manifest(folder, replace(entry, files=files))
