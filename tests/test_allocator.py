"""The workers' allocator policy: applied in every worker, stated in records and env.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST_TIMING, ROOT

from bench.allocator import POLICIES, apply, check_policy, describe
from bench.config import RunConfig

GLIBC = describe("steady").applied

# Allocates and frees a 64 MiB block 20 times and prints the minor page faults per round: the
# C library's own policy maps such a block afresh every time (it is above glibc's largest
# adaptive mmap threshold, 32 MiB), the steady policy reuses the same heap pages.
_FAULTS = """
import resource, sys
import numpy as np
from bench.allocator import apply
state = apply(sys.argv[1])
np.ones(64 << 18, dtype=np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    block = np.ones(64 << 18, dtype=np.float32)
    del block
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def _faults_per_round(policy: str) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", _FAULTS, policy], capture_output=True, text=True, check=True,
        cwd=ROOT, timeout=120,
    )  # fmt: skip
    return float(proc.stdout.strip())


def test_policies_are_checked_by_name() -> None:
    assert check_policy("steady") == "steady"
    with pytest.raises(ValueError, match="valid: steady, system"):
        check_policy("jemalloc")
    assert set(POLICIES) == {"steady", "system"}
    assert not describe("system").applied


@pytest.mark.skipif(not GLIBC, reason="the steady policy needs glibc's mallopt")
def test_steady_policy_reuses_memory_the_system_policy_faults_in_again() -> None:
    assert _faults_per_round("system") > 100  # a fresh mapping each round
    assert _faults_per_round("steady") < 5  # the same pages every round


def test_apply_system_changes_nothing() -> None:
    state = apply("system")
    assert state.policy == "system"
    assert not state.applied
    assert state.setting() == "system"


def test_old_run_configs_resume_with_the_policy_they_were_measured_with() -> None:
    record = RunConfig().to_record()
    assert record["allocator"] == "steady"
    del record["allocator"]  # a run.json written before the policy existed
    assert RunConfig.from_record(record).allocator == "system"


def _run(tmp_path: Path, bench_env: dict[str, str], *extra: str) -> tuple[list[dict], dict]:
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--models", "simple_cnn",
         "--backends", "ort-cpu,torch", "--opsets", "18", "--batch-sizes", "2",
         "--no-baseline", "--out", str(out), *FAST_TIMING, *extra],
        capture_output=True, text=True, env=bench_env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return records, json.loads((out / "env.json").read_text())


@pytest.mark.skipif(not GLIBC, reason="the steady policy needs glibc's mallopt")
def test_every_record_and_env_json_state_the_policy(tmp_path: Path, bench_env) -> None:
    records, env = _run(tmp_path, bench_env)
    assert env["allocator"]["policy"] == "steady" and env["allocator"]["applied"]
    measured = [r for r in records if r["status"] == "ok"]
    assert len(measured) >= 3  # ort-cpu, torch and the control
    for record in measured:
        assert record["settings"]["allocator"].startswith("steady (glibc M_TRIM_THRESHOLD=")


def test_system_policy_is_recorded_as_such(tmp_path: Path, bench_env) -> None:
    records, env = _run(tmp_path, bench_env, "--allocator", "system")
    assert env["allocator"] == {
        "policy": "system", "applied": False,
        "detail": "the C library's own adaptive behaviour",
    }  # fmt: skip
    assert {r["settings"]["allocator"] for r in records if r["status"] == "ok"} == {"system"}


def test_unknown_policy_is_one_line_naming_the_choices(tmp_path: Path, bench_env) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--allocator", "jemalloc"],
        capture_output=True, text=True, env=bench_env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "--allocator" in proc.stderr and "steady" in proc.stderr and "system" in proc.stderr
    assert not (tmp_path / "results").exists()
