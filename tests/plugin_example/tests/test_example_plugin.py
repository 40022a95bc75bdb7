"""The example plugin runs bench's backend contract suite: one import, one class.

Collected by bench's own `python -m pytest` (it lies under tests/) and skipped there, with
the reason, when the plugin is not installed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.backends import backend_entry
from bench.testing import BackendContract, ready_backend, simple_cnn_onnx

pytest.importorskip(
    "bench_example_plugin",
    reason="the example plugin is not installed: pip install -e tests/plugin_example",
)


class TestExampleOrt(BackendContract):
    backend_name = "example-ort"


class TestExampleOrtWithUserProviderOption(BackendContract):
    """The same contract with a provider option given as `--backend-option` would give it."""

    backend_name = "example-ort"
    backend_options = {"provider.use_arena": "0"}  # noqa: RUF012 - read only


def test_registered_through_its_entry_point_with_a_real_install_hint() -> None:
    entry = backend_entry("example-ort")
    assert entry.target == "bench_example_plugin.backend:ExampleOrt"
    assert entry.dist == "bench-example-plugin"
    assert entry.install_hint == "pip install bench-example-plugin"


def test_provider_options_are_recorded(tmp_path_factory: pytest.TempPathFactory) -> None:
    onnx_file = simple_cnn_onnx(tmp_path_factory)
    backend = ready_backend("example-ort", onnx_file)
    try:
        settings = backend.describe()
    finally:
        backend.close()
    assert settings["providers"] == "CPUExecutionProvider"
    assert settings["provider_options"] == "use_arena=1 (not read back)"
    backend = ready_backend("example-ort", onnx_file, options={"provider.use_arena": "0"})
    try:
        assert backend.describe()["provider_options"] == "use_arena=0 (not read back)"
    finally:
        backend.close()


def test_bench_list_shows_the_plugin() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "list"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("example-ort"))
    assert "consumes onnx" in line and "available" in line
