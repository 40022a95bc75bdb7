"""Shared fixtures: a private export cache and short timing for every test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAST_TIMING = [
    "--trials", "2", "--warmup-iters", "2", "--warmup-time", "0", "--min-iters", "5",
    "--min-time", "0.02", "--max-time", "0.2",
]  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test exports into a fresh cache, so CI exercises real exports."""
    cache = tmp_path_factory.mktemp("export-cache")
    os.environ["BENCH_CACHE_DIR"] = str(cache)
    return cache


@pytest.fixture
def bench_env() -> dict[str, str]:
    """Environment for `python -m bench` subprocesses: the checkout and tests importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), *sys.path])
    return env
