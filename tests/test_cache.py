"""The export cache: entries checked on reuse, damaged ones made again, moved and copied caches,
concurrent exporters, and `bench cache list|verify|clear` as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import bench.export
from bench.cache import entry_lock, publish
from bench.export import ExportResult, export_model, given_file
from bench.manifest import MANIFEST, check_entry, model_sha256
from bench.models import resolve_model

SHA = "0" * 64


@pytest.fixture(scope="module")
def cnn():
    spec = resolve_model("simple_cnn")
    return spec, spec.build_module()


@pytest.fixture(scope="module")
def pristine(cnn, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache with simple_cnn's dynamo op18 entry (graph + model.onnx.data) and mlp's
    TorchScript op17 entry (one file), made once and copied by each test."""
    cache = tmp_path_factory.mktemp("pristine")
    assert export_model(*cnn, "dynamo", 18, cache).ok
    mlp = resolve_model("mlp")
    assert export_model(mlp, mlp.build_module(), "torchscript", 17, cache).ok
    return cache


@pytest.fixture
def cache(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(pristine, copy)  # copy2: sizes and mtimes as they were
    return copy


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the real exports (calls of the exporter) made during the test."""
    calls: list[str] = []
    real = bench.export._run_exporter

    def counting(spec, module, exporter, opset, path):
        calls.append(f"{spec.name} {exporter} op{opset}")
        return real(spec, module, exporter, opset, path)

    monkeypatch.setattr(bench.export, "_run_exporter", counting)
    return calls


@pytest.fixture
def quick_exports(pristine: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Like `exports`, but the "exporter" copies the pristine entry's model files (the same
    bytes a real export writes) instead of running torch: the cache logic, fast."""
    calls: list[str] = []
    source = _entry(pristine)

    def copying(spec, module, exporter, opset, path):
        calls.append(f"{spec.name} {exporter} op{opset}")
        for name in ("model.onnx", "model.onnx.data"):
            shutil.copy(source / name, path.parent / name)

    monkeypatch.setattr(bench.export, "_run_exporter", copying)
    return calls


def _entry(cache: Path, prefix: str = "simple_cnn-dynamo-op18-") -> Path:
    (folder,) = [p for p in cache.iterdir() if p.name.startswith(prefix)]
    return folder


def _export(cnn, cache: Path, lines: list[str] | None = None) -> ExportResult:
    return export_model(*cnn, "dynamo", 18, cache, (lines if lines is not None else []).append)


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip


def _edit_manifest(folder: Path, change: Callable[[dict], object]) -> None:
    data = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps(change(data)))


def test_entry_lists_every_file_with_names_relative_to_it(cache: Path, cnn) -> None:
    folder = _entry(cache)
    text = (folder / MANIFEST).read_text()
    assert str(cache) not in text and str(cache.parent) not in text  # nothing absolute
    files = json.loads(text)["files"]
    assert [f["name"] for f in files] == ["model.onnx", "model.onnx.data"]
    for f in files:
        stat = (folder / f["name"]).stat()
        assert (f["size"], f["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns)
    result = _export(cnn, cache)
    assert result.cached and result.path == str(folder / "model.onnx")
    assert result.sha256 == model_sha256((f["name"], f["sha256"]) for f in files)
    assert given_file(result.path).sha256 == result.sha256  # a given file hashes alike
    assert [f["name"] for f in result.files or ()] == ["model.onnx", "model.onnx.data"]


def _truncate(name: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        with open(folder / name, "r+b") as fh:
            fh.truncate(100)

    return damage


def _alter_data(folder: Path) -> None:
    path = folder / "model.onnx.data"
    data = bytearray(path.read_bytes())
    data[-8:] = bytes(8)  # same size, other bytes
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _manifest_text(text: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / MANIFEST).write_bytes(text)


def _file_name(name: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        _edit_manifest(folder, lambda d: {**d, "files": [{**d["files"][0], "name": name}]})

    return damage


def _old_format(folder: Path) -> None:
    """What bench wrote before manifests: the record, with an absolute path."""
    (folder / MANIFEST).write_text(json.dumps({
        "ok": True, "exporter_requested": "dynamo", "exporter_used": "dynamo",
        "opset_requested": 18, "opset_actual": 18, "path": "/elsewhere/model.onnx",
        "sha256": SHA, "export_s": 1.0, "cached": False, "fallback_reason": None,
        "error": None, "graph_sha256": None,
    }))  # fmt: skip


DAMAGE = {
    "truncated model.onnx": (_truncate("model.onnx"), "model.onnx: 100 bytes, the manifest says"),
    "truncated external data": (_truncate("model.onnx.data"), "model.onnx.data: 100 bytes"),
    "altered external data": (_alter_data, "model.onnx.data: sha256 differs from the manifest"),
    "missing file": (lambda f: (f / "model.onnx.data").unlink(), "model.onnx.data is missing"),
    "missing manifest": (lambda f: (f / MANIFEST).unlink(), "export.json is missing"),
    "manifest not JSON": (_manifest_text(b'{"files": ['), "export.json is not readable JSON"),
    "manifest not UTF-8": (_manifest_text(b"\xff\xfe\x00{"), "export.json is not readable JSON"),
    "manifest not an object": (_manifest_text(b"[1, 2]"), "export.json is not a JSON object"),
    "path with ..": (_file_name("../../model.onnx"), "'../../model.onnx' leaves the entry"),
    "absolute path": (_file_name("/etc/passwd"), "'/etc/passwd' is not a relative path"),
    "wrong type": (
        lambda f: _edit_manifest(f, lambda d: {**d, "files": [{**d["files"][0], "size": "1"}]}),
        "'size' is missing or not of the right type",
    ),
    "files not a list": (
        lambda f: _edit_manifest(f, lambda d: {**d, "files": {"model.onnx": 1}}),
        "'files' is missing or not of the right type",
    ),
    "written by an older bench": (_old_format, "is outdated (written by an older bench"),
    # An attacker's find: weights left out of the manifest, then altered, were loaded unchecked.
    "weights left out of the manifest": (
        lambda f: (_edit_manifest(f, lambda d: {**d, "files": d["files"][:1]}), _alter_data(f)),
        "model.onnx.data is in the entry but not in its manifest",
    ),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_entry_is_named_removed_and_exported_again(
    case: str, cache: Path, cnn, quick_exports: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    damage, expected = DAMAGE[case]
    folder = _entry(cache)
    damage(folder)
    lines: list[str] = []
    result = _export(cnn, cache, lines)
    assert result.ok and not result.cached and quick_exports == ["simple_cnn dynamo op18"]
    (warning,) = [line for line in lines if "export cache:" in line]
    assert folder.name in warning and expected in warning, warning
    assert "Traceback" not in capfd.readouterr().err
    check_entry(folder, full=True)  # the new entry checks out
    assert _export(cnn, cache).cached


def test_fast_path_trusts_unchanged_size_and_mtime_and_verify_hashes_everything(
    cache: Path, cnn, exports: list[str], bench_env: dict[str, str]
) -> None:
    folder = _entry(cache)
    path = folder / "model.onnx.data"
    stat = path.stat()
    _alter_data(folder)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime set back
    assert _export(cnn, cache).cached and not exports  # documented: size+mtime are trusted
    proc = _run("cache", "verify", "--cache-dir", str(cache), env=bench_env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"damaged: {folder.name}: model.onnx.data: sha256 differs" in proc.stdout
    proc = _run("cache", "verify", "--repair", "--cache-dir", str(cache), env=bench_env)
    assert proc.returncode == 0 and f"removed {folder.name}" in proc.stdout
    assert not folder.exists() and _entry(cache, "mlp-").is_dir()
    assert not _export(cnn, cache).cached and exports == ["simple_cnn dynamo op18"]


def test_a_moved_cache_is_reused_without_exporting(cache: Path, cnn, exports: list[str]) -> None:
    moved = cache.parent / "moved"
    cache.rename(moved)
    result = _export(cnn, moved)
    assert result.ok and result.cached and not exports
    assert result.path == str(_entry(moved) / "model.onnx")


def test_a_copied_cache_loads_only_files_inside_the_copy(
    cache: Path, cnn, exports: list[str]
) -> None:
    import numpy as np
    import onnxruntime as ort

    copy = cache.parent / "copy"
    shutil.copytree(cache, copy, copy_function=shutil.copy)  # new mtimes: hashed, then trusted
    shutil.rmtree(cache)
    result = _export(cnn, copy)
    assert result.ok and result.cached and not exports
    folder = _entry(copy)
    assert Path(result.path).parent == folder
    listed = {
        f["name"]: f["mtime_ns"] for f in json.loads((folder / MANIFEST).read_text())["files"]
    }
    assert listed == {n: (folder / n).stat().st_mtime_ns for n in listed}  # refreshed
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    spec = cnn[0]
    (out,) = session.run(None, spec.make_inputs(spec.export_sizes(), seed=0))
    assert np.isfinite(out).all()


def test_a_graph_referring_to_unlisted_data_is_damaged(cache: Path, cnn) -> None:
    import onnx

    folder = _entry(cache)
    _edit_manifest(folder, lambda d: {**d, "files": d["files"][:1]})
    with pytest.raises(Exception, match=r"model\.onnx\.data is in the entry but not in its"):
        check_entry(folder)  # found on the fast path too: nothing needs hashing to see it
    (folder / "model.onnx.data").rename(folder.parent / "elsewhere.data")
    with pytest.raises(Exception, match="other external-data files than the manifest"):
        check_entry(folder, full=True)
    assert onnx.load(str(folder / "model.onnx"), load_external_data=False)


def test_leftovers_of_a_killed_exporter_are_removed(cache: Path, cnn) -> None:
    leftover = cache / f".{_entry(cache).name}.x1y2.tmp"
    leftover.mkdir()
    (leftover / "model.onnx").write_bytes(b"half")
    assert _export(cnn, cache).cached and not leftover.exists()


def test_publish_replaces_a_target_that_appeared_meanwhile(tmp_path: Path) -> None:
    new, target = tmp_path / ".new.tmp", tmp_path / "entry"
    for folder, text in ((new, "new"), (target, "old")):
        folder.mkdir()
        (folder / "model.onnx").write_text(text)
    publish(new, target)
    assert (target / "model.onnx").read_text() == "new" and not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


def test_a_second_exporter_waits_for_the_first_and_reuses_its_entry(
    tmp_path: Path, cnn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second thread asks for the entry while the first is exporting it: the lock makes
    it wait, then reuse. Without the lock it would export a second time."""
    import fcntl

    waiting = threading.Event()
    results: dict[str, ExportResult] = {}
    calls: list[str] = []
    real_flock, real_export = fcntl.flock, bench.export._run_exporter

    def flock(fd: int, operation: int) -> None:
        if threading.current_thread().name == "second":
            waiting.set()
        real_flock(fd, operation)

    def second() -> None:
        results["second"] = _export(cnn, tmp_path)

    thread = threading.Thread(target=second, name="second")

    def exporter(*args: object) -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:  # the first export, holding the entry's lock
            thread.start()
            assert waiting.wait(120), "the second exporter never asked for the lock"
        real_export(*args)

    monkeypatch.setattr(fcntl, "flock", flock)
    monkeypatch.setattr(bench.export, "_run_exporter", exporter)
    results["first"] = _export(cnn, tmp_path)
    thread.join(120)
    first, other = results["first"], results["second"]
    assert calls == ["MainThread"]  # one export
    assert first.ok and not first.cached and other.ok and other.cached
    assert first.sha256 == other.sha256
    check_entry(_entry(tmp_path), full=True)


EXPORT_SCRIPT = """
import json, sys
from pathlib import Path
from bench.export import export_model
from bench.models import resolve_model
spec = resolve_model("mlp")
module = spec.build_module()
print("ready", flush=True)
result = export_model(spec, module, "torchscript", 17, Path(sys.argv[1]), print)
print(json.dumps({"ok": result.ok, "cached": result.cached, "sha256": result.sha256}))
"""


def test_two_processes_exporting_one_entry_make_one_valid_entry(
    tmp_path: Path, bench_env: dict[str, str]
) -> None:
    cache = tmp_path / "shared"
    mlp = resolve_model("mlp")
    name = f"mlp-torchscript-op17-{bench.export._cache_key(mlp, 'torchscript', 17)}"
    with entry_lock(cache, name):  # both processes get ready, then race for the entry
        procs = [
            subprocess.Popen([sys.executable, "-c", EXPORT_SCRIPT, str(cache)], env=bench_env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]  # fmt: skip
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    results = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    assert sum("exporting torchscript op17" in out for out, _ in outputs) == 1
    assert sorted(r["cached"] for r in results) == [False, True]
    assert results[0]["sha256"] == results[1]["sha256"] and all(r["ok"] for r in results)
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".bench-locks")] == [name]
    check_entry(cache / name, full=True)


def test_cache_list_names_each_entry_and_its_state(cache: Path, bench_env: dict[str, str]) -> None:
    _truncate("model.onnx")(_entry(cache, "mlp-"))
    env = {**bench_env, "BENCH_CACHE_DIR": str(cache)}  # the default, as for bench run
    proc = _run("cache", "list", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"export cache {cache}: 2 entries")
    (cnn_line,) = [line for line in lines if "simple_cnn" in line]
    assert cnn_line.split()[:3] == ["simple_cnn", "dynamo", "op18"] and cnn_line.endswith(" ok")
    (mlp_line,) = [line for line in lines if "mlp" in line]
    assert "damaged: model.onnx: 100 bytes" in mlp_line


def test_cache_verify_and_list_survive_a_hostile_manifest(
    cache: Path, bench_env: dict[str, str]
) -> None:
    folder = _entry(cache)
    _file_name("../../../etc/passwd")(folder)
    for action, code in (("list", 0), ("verify", 1)):
        proc = _run("cache", action, "--cache-dir", str(cache), env=bench_env)
        assert proc.returncode == code and "Traceback" not in proc.stderr, proc.stderr
        assert "leaves the entry" in proc.stdout
    proc = _run("cache", "verify", "--cache-dir", str(cache), env=bench_env)
    assert f"damaged: {folder.name}: export.json: file name '../../../etc/passwd'" in proc.stdout


def test_entries_of_an_older_bench_are_outdated_and_cleared(
    cache: Path, bench_env: dict[str, str]
) -> None:
    old = cache / "simple_cnn-dynamo-op18-00000000000000aa"  # another key: never looked up
    shutil.copytree(_entry(cache), old)
    _old_format(old)
    proc = _run("cache", "list", "--cache-dir", str(cache), env=bench_env)
    assert "outdated: written by an older bench" in proc.stdout and proc.returncode == 0
    proc = _run("cache", "verify", "--cache-dir", str(cache), env=bench_env)
    assert proc.returncode == 0 and "2 ok, 0 damaged, 1 outdated" in proc.stdout, proc.stdout
    assert f"outdated: {old.name}" in proc.stdout
    proc = _run("cache", "clear", "--cache-dir", str(cache), env=bench_env)
    assert proc.returncode == 0 and "removed 3 entries" in proc.stdout
    assert not list(cache.iterdir())  # the lock folder too


def test_cache_clear_removes_entries_and_leaves_everything_else(
    cache: Path, tmp_path: Path, bench_env: dict[str, str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / MANIFEST).write_text("{}")
    unrelated = {
        "notes.txt": "file",
        "my-project": "folder",
        "foo-dynamo-op18-0123456789abcdef": "folder",  # an entry's name, nothing of an entry
        ".bench-locks-not": "folder",
    }
    for name, kind in unrelated.items():
        if kind == "file":
            (cache / name).write_text("keep")
        else:
            (cache / name).mkdir()
            (cache / name / "keep.txt").write_text("keep")
    (cache / "bar-dynamo-op18-0123456789abcdef").symlink_to(outside)
    proc = _run("cache", "clear", "--model", "nonesuch", "--cache-dir", str(cache), env=bench_env)
    assert proc.returncode == 2 and proc.stderr.startswith("bench: error: no cache entry of model")
    assert "mlp, simple_cnn" in proc.stderr
    proc = _run("cache", "clear", "--model", "mlp", "--cache-dir", str(cache), env=bench_env)
    assert proc.returncode == 0 and "removed 1 entry" in proc.stdout, proc.stderr
    assert _entry(cache).is_dir() and not [p for p in cache.iterdir() if p.name.startswith("mlp")]
    proc = _run("cache", "clear", "--cache-dir", str(cache), env=bench_env)
    assert proc.returncode == 0 and "removed 1 entry" in proc.stdout, proc.stderr
    left = sorted(p.name for p in cache.iterdir())
    assert left == sorted([*unrelated, "bar-dynamo-op18-0123456789abcdef"])
    assert (outside / MANIFEST).read_text() == "{}"


def test_cache_command_errors_are_one_line(tmp_path: Path, bench_env: dict[str, str]) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    for action in ("list", "verify", "clear"):
        proc = _run("cache", action, "--cache-dir", str(not_a_folder), env=bench_env)
        assert proc.returncode == 2 and proc.stderr == (
            f"bench: error: --cache-dir {not_a_folder} is not a folder\n"
        )
    assert not_a_folder.read_text() == "x"
    proc = _run("cache", env=bench_env)
    assert proc.returncode == 2 and proc.stderr.startswith("bench: error:")
    proc = _run("cache", "verify", "--cache-dir", str(tmp_path / "none"), env=bench_env)
    assert proc.returncode == 0 and "0 ok, 0 damaged" in proc.stdout


def test_compare_meets_records_from_before_sha256_covered_external_data() -> None:
    from bench.comparison import _comparability
    from bench.record import model_hashes

    graph = {"name": "model.onnx", "size": 1, "sha256": "a" * 64}
    data = {"name": "model.onnx.data", "size": 1, "sha256": "b" * 64}
    new = {"sha256": "c" * 64, "files": [graph, data]}
    old = {"sha256": "a" * 64}  # an older record: the graph file's own hash, no files
    assert model_hashes(old, new) == ("a" * 64, "a" * 64)
    assert model_hashes(new, {**new, "sha256": "d" * 64}) == ("c" * 64, "d" * 64)
    cell = {"opset_actual": 18}
    assert _comparability({**cell, "export": old}, {**cell, "export": new}) is None
    assert _comparability({**cell, "export": {"sha256": "e" * 64}}, {**cell, "export": new})
