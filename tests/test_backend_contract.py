"""One contract, run against every registered backend (skips with the reason if unavailable).

The contract itself ships in the package as `bench.testing`, so a backend plugin runs the very
same suite in its own tests; this module runs it for every backend in the registry, built-in
or installed through an entry point, then checks backend-specific settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bench.backends import (
    BACKENDS,
    OrtExecutionProvider,
    load_backend_class,
    register_backend,
)
from bench.backends.base import Backend, BackendUnavailable, LoadSpec, PrecisionMismatch
from bench.backends.ort import OrtCpu, OrtCuda
from bench.testing import BackendContract, ready_backend, simple_cnn_onnx

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("backend_name", sorted(BACKENDS), scope="class")
class TestRegisteredBackend(BackendContract):
    """The shipped contract suite, once per registered backend."""


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return simple_cnn_onnx(tmp_path_factory, 17)


def _ready_backend(name: str, onnx_file: str, precision: str = "fp32") -> Backend:
    return ready_backend(name, onnx_file, precision)


# -- the suite itself: skips with the reason, catches a wrong backend ----------------------


class Unavailable(OrtCpu):
    name = "never-here"

    @classmethod
    def check_available(cls) -> None:
        raise BackendUnavailable("no never-here device")


class FallsBackToCpu(OrtCuda):
    """Claims CUDA is there: ONNX Runtime then falls back to the CPU, which `load` refuses."""

    name = "falls-back"

    @classmethod
    def check_available(cls) -> None:
        pass


@pytest.fixture
def temporary_backend():
    """Register test backends under names removed again after the test."""
    added: list[str] = []

    def add(name: str, cls: type[Backend], hint: str) -> None:
        register_backend(name, f"{__name__}:{cls.__name__}", hint)
        added.append(name)

    yield add
    for name in added:
        BACKENDS.pop(name)


def test_unavailable_backend_skips_with_the_reason_and_hint(onnx_file, temporary_backend):
    temporary_backend("never-here", Unavailable, "pip install never-here")
    with pytest.raises(
        pytest.skip.Exception,
        match=r"never-here unavailable here: no never-here device \(install: pip install never-here\)",
    ):
        ready_backend("never-here", onnx_file)


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider'")
def test_provider_that_falls_back_to_cpu_is_refused(onnx_file, temporary_backend) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider: nothing falls back")
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider did not load; ONNX "):
        FallsBackToCpu().load(LoadSpec(onnx_file))
    temporary_backend("falls-back", FallsBackToCpu, "test-only backend")
    with pytest.raises(
        pytest.skip.Exception,
        match="falls-back did not load here: CUDAExecutionProvider did not load; ONNX Runtime "
        "fell back to CPUExecutionProvider",
    ):
        ready_backend("falls-back", onnx_file)


CONTRACT_USER = """
from bench.backends import register_backend
from bench.testing import BackendContract

register_backend("fault-nan", "fault_backends:NaNs", "test-only backend")


class TestNaNs(BackendContract):
    backend_name = "fault-nan"


class TestNotRegistered(BackendContract):
    backend_name = "ort-cpux"


class TestUnset(BackendContract):
    pass
"""


@pytest.mark.slow
def test_shipped_suite_fails_wrong_backends_from_a_plain_test_file(tmp_path: Path) -> None:
    """What a plugin author gets: one import, and the suite has teeth."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent(CONTRACT_USER))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", "test_user.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    failed = {line.split(" ")[1] for line in out.splitlines() if line.startswith("FAILED ")}
    failed |= {line.split(" ")[1] for line in out.splitlines() if line.startswith("ERROR ")}
    assert "test_user.py::TestNaNs::test_outputs_match_the_reference" in failed
    assert "test_user.py::TestNaNs::test_throughput_round" in failed
    assert "test_user.py::TestNaNs::test_describe_reads_back_settings" not in failed
    assert "test_user.py::TestNotRegistered::test_declares_the_contract" in failed
    assert "unknown backend 'ort-cpux' (did you mean 'ort-cpu'?)" in out
    assert "test_user.py::TestUnset::test_declares_the_contract" in failed
    assert "TestUnset: set backend_name to a registered backend" in out


# -- ONNX Runtime: providers and options read back ------------------------------------------


def test_ort_cpu_reports_the_provider_actually_in_use(onnx_file: str) -> None:
    backend = _ready_backend("ort-cpu", onnx_file)
    assert backend.describe()["providers"] == "CPUExecutionProvider"


def test_ort_cpu_applies_and_reads_back_settings(onnx_file: str) -> None:
    cls = load_backend_class(BACKENDS["ort-cpu"].target)
    backend = cls()
    backend.load(LoadSpec(onnx_file, threads=1, options={"graph_optimization_level": "basic"}))
    settings = backend.describe()
    assert settings["intra_op_num_threads"] == "1"
    assert settings["graph_optimization_level"] == "ORT_ENABLE_BASIC"
    assert "provider_options" not in settings  # none asked for: the record is unchanged
    with pytest.raises(ValueError, match="valid: disable, basic, extended, all"):
        cls().load(LoadSpec(onnx_file, options={"graph_optimization_level": "max"}))


def test_ort_cuda_never_runs_on_cpu(onnx_file: str) -> None:
    cls = load_backend_class(BACKENDS["ort-cuda"].target)
    try:
        cls.check_available()
    except BackendUnavailable as exc:
        assert "CUDAExecutionProvider" in str(exc)
        return
    backend = cls()
    backend.load(LoadSpec(onnx_file))
    assert backend.describe()["providers"].startswith("CUDAExecutionProvider")


class CpuWithOptions(OrtExecutionProvider):
    name = "cpu-with-options"
    provider = "CPUExecutionProvider"
    provider_options: ClassVar[dict[str, str]] = {
        "arena_extend_strategy": "kSameAsRequested",
        "use_arena": "1",
    }


@pytest.fixture
def sessions_made(monkeypatch) -> list[dict[str, Any]]:
    """The arguments of every onnxruntime.InferenceSession made while the test runs."""
    ort = pytest.importorskip("onnxruntime")
    made: list[dict[str, Any]] = []
    real = ort.InferenceSession

    def recording(path, sess_options=None, providers=None, **kwargs):
        made.append({"providers": providers, "options": sess_options})
        return real(path, sess_options, providers=providers, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    return made


def test_execution_provider_options_from_the_class_and_the_user(onnx_file, sessions_made):
    backend = CpuWithOptions()
    backend.load(
        LoadSpec(
            onnx_file,
            threads=1,
            options={"provider.use_arena": "0", "graph_optimization_level": "basic"},
        )
    )
    assert sessions_made[-1]["providers"] == [
        ("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested", "use_arena": "0"})
    ]
    settings = backend.describe()
    assert settings["graph_optimization_level"] == "ORT_ENABLE_BASIC"  # session options too
    assert settings["intra_op_num_threads"] == "1"
    # The CPU provider reports no options back; the record says so rather than claim them.
    assert settings["provider_options"] == (
        "arena_extend_strategy=kSameAsRequested (not read back), use_arena=0 (not read back)"
    )


def test_builtin_providers_pass_their_lists(onnx_file, sessions_made) -> None:
    OrtCpu().load(LoadSpec(onnx_file))
    assert sessions_made[-1]["providers"] == [("CPUExecutionProvider", {})]
    assert OrtCuda.fallback_providers == ("CPUExecutionProvider",)
    assert issubclass(OrtCpu, OrtExecutionProvider) and issubclass(OrtCuda, OrtExecutionProvider)


def test_execution_provider_option_needs_a_name(onnx_file: str) -> None:
    with pytest.raises(ValueError, match=r"option 'provider\.': expected provider\.NAME=VALUE"):
        CpuWithOptions().load(LoadSpec(onnx_file, options={"provider.": "1"}))


def test_missing_execution_provider_is_unavailable() -> None:
    pytest.importorskip("onnxruntime")

    class Nowhere(OrtExecutionProvider):
        name = "nowhere"
        provider = "NowhereExecutionProvider"

    with pytest.raises(BackendUnavailable, match=r"has no NowhereExecutionProvider \(available"):
        Nowhere.check_available()


# -- OpenVINO --------------------------------------------------------------------------------


def test_openvino_pins_fp32_and_reads_it_back(onnx_file: str) -> None:
    backend = _ready_backend("openvino", onnx_file)
    settings = backend.describe()
    assert settings["INFERENCE_PRECISION_HINT"] == "f32"
    assert settings["shapes"] == "static"
    try:
        backend = _ready_backend("openvino", onnx_file, precision="bf16")
    except PrecisionMismatch as exc:  # a CPU without bf16: refused, never silently f32
        assert "compiled model uses f32" in str(exc)
    else:
        assert backend.describe()["precision"] == "bf16"


def test_openvino_threads_read_back(onnx_file: str) -> None:
    cls = load_backend_class(BACKENDS["openvino"].target)
    try:
        cls.check_available()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    backend = cls()
    backend.load(LoadSpec(onnx_file, threads=1, input_shapes={"input_image": (1, 3, 32, 32)}))
    assert backend.describe()["INFERENCE_NUM_THREADS"] == "1"
