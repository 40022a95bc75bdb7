"""One bad cell costs one cell: workers crash, hang, raise and lie; the sweep goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import FAST_TIMING

DRIVER = (
    "import sys, fault_backends; fault_backends.register(); "
    "from bench.cli import main; raise SystemExit(main(sys.argv[1:]))"
)


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *args], capture_output=True, text=True, env=env,
        timeout=timeout,
    )  # fmt: skip


def _records(run_dir: Path) -> dict[str, dict]:
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return {r["backend"]: r for r in map(json.loads, lines) if r.get("kind") == "cell"}


def test_crashing_hanging_raising_and_lying_backends_cost_their_cell_only(tmp_path, bench_env):
    out = tmp_path / "run"
    backends = "fault-segfault,fault-hang,ort-cpu,fault-raise,fault-nan,fault-shape"
    proc = _run(
        ["run", "--backends", backends, "--opsets", "17", "--batch-sizes", "2",
         "--cell-timeout", "20", "--out", str(out), *FAST_TIMING],
        bench_env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    records = _records(out)
    assert set(records) == {*backends.split(","), "torch"}
    assert records["fault-segfault"]["status"] == "crashed"
    assert "SIGSEGV" in records["fault-segfault"]["reason"]
    assert records["fault-hang"]["status"] == "timeout"
    assert "within 20s" in records["fault-hang"]["reason"]
    assert records["fault-raise"]["status"] == "failed"
    assert "injected failure while loading" in records["fault-raise"]["reason"]
    assert records["fault-nan"]["status"] == "parity_failed"
    assert "NaN" in records["fault-nan"]["reason"]
    assert records["fault-shape"]["status"] == "parity_failed"
    assert "shape (2, 9), expected (2, 10)" in records["fault-shape"]["reason"]
    for healthy in ("ort-cpu", "torch"):
        assert records[healthy]["status"] == "ok"
        assert records[healthy]["parity"]["passed"]
    assert (out / "report.md").exists() and (out / "summary.csv").exists()


def test_allow_failures_turns_exit_status_to_zero(tmp_path, bench_env):
    proc = _run(
        ["run", "--backends", "fault-raise", "--no-baseline", "--opsets", "17",
         "--batch-sizes", "1", "--out", str(tmp_path / "r"), "--allow-failures", *FAST_TIMING],
        bench_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _records(tmp_path / "r")["fault-raise"]["status"] == "failed"


def test_onnx_workers_never_import_torch(tmp_path, bench_env):
    out = tmp_path / "run"
    proc = _run(
        ["run", "--backends", "ort-cpu,openvino", "--opsets", "17", "--batch-sizes", "1",
         "--out", str(out), *FAST_TIMING],
        bench_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = _records(out)
    assert records["ort-cpu"]["worker_imported_torch"] is False
    assert records["openvino"]["worker_imported_torch"] is False
    assert records["torch"]["worker_imported_torch"] is True


def test_parent_side_failure_costs_its_cell_only(tmp_path, bench_env):
    out = tmp_path / "run"
    proc = _run(
        ["run", "--models", "failing_models:picky", "--backends", "ort-cpu", "--opsets", "17",
         "--batch-sizes", "1,3", "--out", str(out), *FAST_TIMING],
        bench_env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    by_batch = {(r["backend"], r["batch_size"]): r for r in records}
    assert by_batch[("ort-cpu", 1)]["status"] == "ok"
    failed = by_batch[("ort-cpu", 3)]
    assert failed["status"] == "failed"
    assert (
        "PyTorch reference at {'batch': 3}: ValueError: batch of 3 is not supported"
        in failed["reason"]
    )
    assert by_batch[("torch", 3)]["status"] == "failed"


def test_a_crash_inside_a_trial_costs_that_cell_and_its_neighbours_reload(tmp_path, bench_env):
    """Two cells share the crashing backend's worker; the one in flight is `crashed`, the
    other is reloaded in a fresh worker and finishes its trials."""
    out = tmp_path / "run"
    env = {**bench_env, "BENCH_FAULT_MARKER": str(tmp_path / "crashed-once")}
    proc = _run(
        ["run", "--backends", "fault-trial-crash,ort-cpu", "--no-baseline", "--opsets", "17",
         "--batch-sizes", "1,2", "--out", str(out), *FAST_TIMING, "--trials", "3"],
        env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    faulty = [r for r in records if r["backend"] == "fault-trial-crash"]
    assert sorted(r["status"] for r in faulty) == ["crashed", "ok"]
    crashed = next(r for r in faulty if r["status"] == "crashed")
    assert "SIGSEGV" in crashed["reason"] and "trial" in crashed["reason"]
    survivor = next(r for r in faulty if r["status"] == "ok")
    assert survivor["latency"]["inference"]["n_trials"] >= 3  # a contended trial may add one
    assert any("reloaded" in w for w in survivor["warnings"])
    assert all(r["status"] == "ok" for r in records if r["backend"] == "ort-cpu")


def test_an_export_that_kills_its_process_costs_that_models_cells_only(tmp_path, bench_env):
    """torch.onnx.export runs in the reference worker: an export that aborts kills that
    worker, the model's cells fail saying so, and the next model exports in a fresh one."""
    out = tmp_path / "run"
    proc = _run(
        ["run", "--models", "failing_models:export_crasher,simple_cnn", "--backends", "ort-cpu",
         "--exporter", "torchscript", "--opsets", "17", "--batch-sizes", "1", "--out", str(out),
         *FAST_TIMING],
        bench_env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    by_cell = {(r["model"], r["backend"]): r for r in records if r["kind"] == "cell"}
    crashed = by_cell[("export_crasher", "ort-cpu")]
    assert crashed["status"] == "export_failed"
    assert "export: crashed in the reference worker: worker killed by SIGABRT" in crashed["reason"]
    assert by_cell[("export_crasher", "torch")]["status"] == "ok"  # eager needs no export
    assert by_cell[("simple_cnn", "ort-cpu")]["status"] == "ok"
    assert by_cell[("simple_cnn", "ort-cpu")]["parity"]["passed"] is True


def test_a_lost_reference_worker_is_one_line_for_exports_and_oracles() -> None:
    from bench.artifacts import Artifacts
    from bench.pool import WorkerLost
    from bench.prepjobs import ExportJob
    from bench.refworker import ReferenceWorker

    class HangingWorker:
        def execute(self, job, timeout):
            raise WorkerLost("timeout", f"worker gave no result within {timeout:g}s and was "
                             "killed; stderr tail:\nlast words")  # fmt: skip

    class Scheduler:
        def __init__(self) -> None:
            self.forgotten: list[str] = []

        def worker(self, key, label):
            return HangingWorker()

        def forget(self, key):
            self.forgotten.append(key)

    scheduler = Scheduler()
    reference = ReferenceWorker(scheduler, cell_timeout=5)  # type: ignore[arg-type]
    line = reference.prep(ExportJob("simple_cnn", "dynamo", 18, "/nonexistent"))
    assert line == (
        "timeout in the reference worker: worker gave no result within 65s and was killed"
    )
    assert scheduler.forgotten == ["reference"]
    artifacts = Artifacts({}, Path("/nonexistent"), (0,), reference.reference, reference.prep,
                          progress=lambda line: None)  # fmt: skip
    result = artifacts.export("simple_cnn", "dynamo", 18)
    assert not result.ok and result.error.startswith("export: timeout in the reference worker")


def test_a_module_whose_naming_forward_aborts_is_one_line_and_nothing_starts(tmp_path, bench_env):
    """A `(module, inputs)` model is named by one forward in a child process: an abort there
    is the model's one-line error, never the planning process's death."""
    proc = _run(
        ["run", "--models", "failing_models:abort_forward,simple_cnn", "--backends", "ort-cpu",
         "--opsets", "18", "--batch-sizes", "1", "--out", str(tmp_path / "run"), *FAST_TIMING],
        bench_env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "failing_models:abort_forward: forward() on example inputs (batch 2) killed its " \
           "process (SIGABRT)" in line  # fmt: skip
    assert not (tmp_path / "run").exists()


def _probe_env(monkeypatch):
    from bench.models import probe

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    monkeypatch.delenv(probe.IN_WORKER_ENV, raising=False)
    monkeypatch.setattr(sys, "path", [str(Path(__file__).parent), *sys.path])
    return probe


def test_a_naming_forward_that_prints_or_exits_is_read_right(monkeypatch) -> None:
    import pytest

    from bench.errors import BenchError

    probe = _probe_env(monkeypatch)
    assert probe.probe_names_in_child("failing_models:chatty_forward") == ["output_0"]
    with pytest.raises(BenchError, match=r"exit0_forward: forward\(\) on example inputs \(batch "
                       r"2\) ended its process \(status 0\) before it returned"):  # fmt: skip
        probe.probe_names_in_child("failing_models:exit0_forward")


def test_a_naming_forward_that_hangs_is_stopped_at_its_deadline(monkeypatch) -> None:
    import pytest

    from bench.errors import BenchError
    from bench.models import probe

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    monkeypatch.delenv(probe.IN_WORKER_ENV, raising=False)
    # Long enough to import torch and build the model on a loaded 2-core machine (3 s was not,
    # beside another test suite: the child was still building the model).
    monkeypatch.setattr(probe, "_timeout_s", 20.0)
    monkeypatch.setattr(sys, "path", [str(Path(__file__).parent), *sys.path])
    with pytest.raises(BenchError, match=r"hang_forward: forward\(\) on example inputs .* gave "
                       r"no result within 20 s"):  # fmt: skip
        probe.probe_names_in_child("failing_models:hang_forward")


def test_the_naming_child_dies_with_its_parent(tmp_path) -> None:
    """SIGKILL of the planning process takes the probe's child with it (no orphan left)."""
    import signal
    import time

    tests = str(Path(__file__).parent)
    code = (f"import sys; sys.path.insert(0, {tests!r})\n"
            "from bench.models import probe\n"
            "probe.probe_names_in_child('failing_models:hang_forward')\n")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": tests}
    env.pop("BENCH_IN_WORKER", None)
    parent = subprocess.Popen([sys.executable, "-c", code], env=env)

    def children() -> list[int]:
        found = []
        for pid in os.listdir("/proc"):
            try:
                cmd = (Path("/proc") / pid / "cmdline").read_bytes()
            except OSError:
                continue
            if pid.isdigit() and b"bench.models.probe" in cmd and b"hang_forward" in cmd:
                found.append(int(pid))
        return found

    deadline = time.monotonic() + 60
    while not children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert children(), "the probe's child never started"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not children()


USER_FILES = {
    "aborts_on_import.py": "import os\nos.abort()\n",
    "hangs_on_import.py": "import time\ntime.sleep(600)\n",
    "crashes_when_called.py": (
        "import os, signal\n\ndef make():\n    os.kill(os.getpid(), signal.SIGSEGV)\n"
    ),
}


def test_a_model_file_that_dies_or_hangs_while_imported_or_called_is_one_line(
    tmp_path, monkeypatch
) -> None:
    """A user's model file is imported and its function called in the probe's child first:
    an abort or a hang at import, a crash in the call, is one line naming the model and the
    step it was in, and this process never imported the file."""
    import re

    import pytest

    from bench.errors import BenchError

    probe = _probe_env(monkeypatch)
    monkeypatch.setattr(probe, "_timeout_s", 20.0)
    for name, text in USER_FILES.items():
        (tmp_path / name).write_text(text)
    from bench.models import resolve_model

    aborts = f"{tmp_path / 'aborts_on_import.py'}:make"
    with pytest.raises(BenchError, match=rf"^{re.escape(aborts)}: importing .*aborts_on_import\.py killed "
                       r"its process \(SIGABRT\)$"):  # fmt: skip
        resolve_model(aborts)
    crashes = f"{tmp_path / 'crashes_when_called.py'}:make"
    with pytest.raises(BenchError, match=r"crashes_when_called\.py:make: calling make\(\) killed "
                       r"its process \(SIGSEGV\)$"):  # fmt: skip
        resolve_model(crashes)
    monkeypatch.setattr(probe, "_timeout_s", 5.0)
    hangs = f"{tmp_path / 'hangs_on_import.py'}:make"
    with pytest.raises(BenchError, match=r"hangs_on_import\.py:make: importing .* gave no result "
                       r"within 5 s"):  # fmt: skip
        resolve_model(hangs)
    assert not [m for m in sys.modules if m.startswith("bench_user_model_")
                and "on_import" in str(getattr(sys.modules[m], "__file__", ""))]  # fmt: skip


def test_a_model_file_that_aborts_on_import_stops_nothing_but_its_run(tmp_path, bench_env):
    """The way a user meets it: `bench run` exits 2 with one line, and starts nothing."""
    (tmp_path / "aborts_on_import.py").write_text(USER_FILES["aborts_on_import.py"])
    ref = f"{tmp_path / 'aborts_on_import.py'}:make"
    proc = _run(["run", "--models", ref, "--backends", "ort-cpu", "--opsets", "18",
                 "--batch-sizes", "1", "--out", str(tmp_path / "run"), *FAST_TIMING], bench_env)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert f"{ref}: importing" in line and "killed its process (SIGABRT)" in line, line
    assert not (tmp_path / "run").exists()


def test_an_interrupted_probe_takes_its_child_while_its_caller_lives_on(tmp_path) -> None:
    """Ctrl-C while the probe's child runs, in a caller of bench.run that catches it and lives
    on: the child is killed and reaped there and then, not left to its lifeline. A fresh
    interpreter, so that the SIGINT reaches exactly the code under test."""
    import signal
    import time

    tests = str(Path(__file__).parent)
    # SIGINT's default handler set explicitly: a shell's background job (CI) starts with SIGINT
    # ignored, and Python keeps it so.
    code = (f"import signal, sys, time; sys.path.insert(0, {tests!r})\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from bench.models import probe\n"
            "probe.set_probe_timeout(120)\n"
            "try:\n"
            "    probe.probe_names_in_child('failing_models:hang_forward')\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', flush=True)\n"
            "    time.sleep(60)\n")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": tests}
    env.pop("BENCH_IN_WORKER", None)
    caller = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip

    def children() -> list[int]:
        found = []
        for pid in os.listdir("/proc"):
            try:
                cmd = (Path("/proc") / pid / "cmdline").read_bytes()
                ppid = (Path("/proc") / pid / "stat").read_text().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue
            if b"bench.models.probe" in cmd and int(ppid) == caller.pid:
                found.append(int(pid))
        return found

    try:
        deadline = time.monotonic() + 60
        while not children() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert children(), "the probe's child never started"
        caller.send_signal(signal.SIGINT)
        assert caller.stdout is not None
        assert caller.stdout.readline().strip() == "interrupted"
        assert caller.poll() is None  # the caller lives on ...
        assert children() == []  # ... and its probe child is gone, reaped (no zombie)
    finally:
        caller.kill()
        caller.wait()
