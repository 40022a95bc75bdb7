"""`--executor ray`: the quick-start sweep on a local Ray instance gives the cells, statuses
and parity of the local executor; a task killed mid-cell costs that cell only, and
`--resume --retry-failed` measures it again. Every Ray process listens on 127.0.0.1 only and
none is left when the instance is shut down.

Ray's tests need the ray extra (`pip install -e '.[ray]'`); the flag checks do not."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAST_TIMING, ROOT

DRIVER = (
    "import sys, fault_backends; fault_backends.register(); "
    "from bench.cli import main; raise SystemExit(main(sys.argv[1:]))"
)
NO_RAY = (  # as if the ray package were not installed
    "import sys, importlib.util as u; real = u.find_spec; "
    "u.find_spec = lambda name, *a: None if name == 'ray' else real(name, *a); "
    "from bench.cli import main; raise SystemExit(main(sys.argv[1:]))"
)
LABEL = "bench-test=cpu"
QUICK = ["--models", "simple_cnn", "--backends", "ort-cpu,openvino", "--opsets", "18",
         "--batch-sizes", "1", *FAST_TIMING]  # fmt: skip
needs_ray = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("ray") is None,
    reason="ray is not installed: pip install -e '.[ray]' runs the Ray executor's tests",
)


def _bench(args: list[str], env: dict[str, str], code: str = DRIVER) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip


def _cells(run_dir: Path) -> dict[str, dict]:
    """The latest record per cell id, control included."""
    records = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    return {r["cell_id"]: r for r in records}


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _listeners(pids: set[int]) -> list[str]:
    """The TCP listening addresses of `pids` (`ss -ltnpH`)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines()
            if any(f"pid={p}," in line for p in pids)]  # fmt: skip


def _assert_loopback_only() -> None:
    """Every socket this process's Ray processes listen on is on 127.0.0.1."""
    listening = _listeners({os.getpid(), *_descendants(os.getpid())})
    assert listening, "no Ray listener found"
    assert all(a.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")) for a in listening), listening


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A local Ray instance in this process, bound to 127.0.0.1, its node labelled; the
    bench drivers join it by address. Shut down at the end, leaving no process behind."""
    saved = dict(os.environ)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read on import: node on loopback
    import ray

    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), *sys.path])
    # the Ray workers' environment is the instance's: fault-kill-parent's marker lives there
    os.environ["BENCH_FAULT_MARKER"] = str(tmp_path_factory.mktemp("marker") / "killed-once")
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False,
             labels={"bench-test": "cpu"}, log_to_driver=False)  # fmt: skip
    started = _descendants(os.getpid())
    try:
        _assert_loopback_only()
        yield dict(os.environ), ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(saved)
    deadline = time.monotonic() + 30
    while _descendants(os.getpid()) & started and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _descendants(os.getpid()) & started, "Ray processes left after shutdown"


def test_ray_flags_are_checked_before_anything_runs(tmp_path, bench_env):
    for args, message in [
        (["--target", "accel=h200"], "--target goes with --executor ray"),
        (["--ray-address", "auto"], "--ray-address goes with --executor ray"),
        (["--executor", "ray", "--target", "h200"], "expected KEY=VALUE"),
        (["--executor", "ray", "--target", "a=b c"], "expected KEY=VALUE"),
        (["--executor", "ray", "--ray-address", " "], "--ray-address: empty"),
        (["--executor", "slurm"], "invalid choice: 'slurm'"),
        (["--executor", "ray", "--cpus", "0"], "--cpus pins this machine's cores"),
    ]:
        proc = _bench(["run", *QUICK, "--out", str(tmp_path / "r"), *args], bench_env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not (tmp_path / "r").exists()


def test_executor_ray_without_ray_says_how_to_install(tmp_path, bench_env):
    proc = _bench(["run", *QUICK, "--executor", "ray", "--out", str(tmp_path / "r")],
                  bench_env, NO_RAY)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "pip install -e '.[ray]'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@needs_ray
@pytest.mark.slow
def test_a_target_no_node_has_is_one_line(tmp_path, cluster):
    env, address = cluster
    proc = _bench(["run", *QUICK, "--executor", "ray", "--ray-address", address,
                   "--target", "accel=h200", "--out", str(tmp_path / "r")], env)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "--target accel=h200: no alive Ray node" in last and LABEL in last, proc.stderr
    assert "Traceback" not in proc.stderr


@needs_ray
@pytest.mark.slow
def test_quick_start_on_ray_matches_the_local_executor(tmp_path, cluster):
    env, address = cluster
    local, remote = tmp_path / "local", tmp_path / "ray"
    proc = _bench(["run", *QUICK, "--out", str(local)], env)
    assert proc.returncode == 0, proc.stderr
    proc = _bench(["run", *QUICK, "--executor", "ray", "--ray-address", address,
                   "--target", LABEL, "--out", str(remote)], env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "[ray] simple_cnn/ort-cpu/auto-op18/b1/fp32/on-bench-test=cpu ->" in proc.stdout
    _assert_loopback_only()

    mine, theirs = _cells(remote), _cells(local)
    suffix = f"/on-{LABEL}"
    assert {c.removesuffix(suffix) for c in mine} == set(theirs)
    for cell_id, record in mine.items():
        twin = theirs[cell_id.removesuffix(suffix)]
        assert record["status"] == twin["status"] == "ok", cell_id
        assert (record["parity"] or {}).get("passed") == (twin["parity"] or {}).get("passed")
        assert record["target"] == LABEL and record["host"] == socket.gethostname()
        assert record["node_id"] and twin["node_id"] is None and twin["target"] is None
        assert record["schema_version"] == 5
    control = mine[f"control/control/matmul{suffix}"]
    assert control["kind"] == "control" and control["latency"]["inference"]["n_trials"] >= 2
    assert f"ort-cpu @ {LABEL}" in (remote / "report.md").read_text()
    assert list((remote / "logs").glob("ray-*.log"))


@needs_ray
@pytest.mark.slow
def test_a_task_killed_mid_cell_costs_that_cell_only(tmp_path, cluster):
    env, address = cluster
    out = tmp_path / "run"
    run = ["run", "--models", "simple_cnn", "--backends", "fault-kill-parent,ort-cpu",
           "--no-baseline", "--opsets", "18", "--batch-sizes", "1", *FAST_TIMING,
           "--executor", "ray", "--ray-address", address, "--out", str(out)]  # fmt: skip
    proc = _bench(run, env)
    assert proc.returncode == 1, proc.stderr
    cells = _cells(out)
    killed = cells["simple_cnn/fault-kill-parent/auto-op18/b1/fp32"]
    assert killed["status"] == "crashed" and "Ray task on" in killed["reason"], killed
    assert cells["simple_cnn/ort-cpu/auto-op18/b1/fp32"]["status"] == "ok"
    assert cells["control/control/matmul"]["status"] == "ok"

    proc = _bench(["run", "--resume", str(out), "--retry-failed"], env)
    assert proc.returncode == 0, proc.stderr
    assert "1 cells" in proc.stdout and "(1 already done)" in proc.stdout
    cells = _cells(out)
    assert {c: r["status"] for c, r in cells.items() if r["kind"] == "cell"} == {
        "simple_cnn/fault-kill-parent/auto-op18/b1/fp32": "ok",
        "simple_cnn/ort-cpu/auto-op18/b1/fp32": "ok",
    }


def test_the_files_a_node_gets_are_the_models_own(tmp_path):
    from bench.backends.base import LoadSpec
    from bench.jobs import LoadJob
    from bench.raytask import _unpack, model_files
    from bench.schedule import Planned

    entry = tmp_path / "entry"
    entry.mkdir()
    for name, data in (("model.onnx", b"graph"), ("model.onnx.data", b"w"), ("export.json", b"{}")):
        (entry / name).write_bytes(data)
    files = model_files(str(entry / "model.onnx"))
    assert files == {"model.onnx": b"graph", "model.onnx.data": b"w"}
    assert model_files("simple_cnn") is None  # a torch backend builds the model by name
    job = LoadJob("c", "x:Y", LoadSpec(source=str(entry / "model.onnx")), [])
    unpacked = _unpack(Planned("c", "ort-cpu", job), files, tmp_path / "node")
    assert Path(unpacked.job.load.source) == tmp_path / "node" / "model.onnx"
    assert (tmp_path / "node" / "model.onnx.data").read_bytes() == b"w"
    with pytest.raises(ValueError, match="leaves its folder"):
        _unpack(Planned("c", "ort-cpu", job), {"../escape": b""}, tmp_path / "node2")
    assert not (tmp_path / "escape").exists()


def test_a_target_is_part_of_the_cell_id():
    from bench.grid import Cell

    cell = Cell("simple_cnn", "ort-cpu", 1, "fp32", "auto", 18, target="accel=h200")
    assert cell.cell_id == "simple_cnn/ort-cpu/auto-op18/b1/fp32/on-accel=h200"


def test_resume_takes_ray_address_only_for_a_ray_run(tmp_path, bench_env):
    out = tmp_path / "r"
    proc = _bench(["run", "--models", "simple_cnn", "--backends", "fault-raise", "--no-baseline",
                   "--opsets", "18", "--batch-sizes", "1", "--no-control", "--out", str(out),
                   *FAST_TIMING], bench_env)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    proc = _bench(["run", "--resume", str(out), "--ray-address", "auto"], bench_env)
    assert proc.returncode == 2 and "--ray-address goes with --executor ray" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
