"""One contract, run against every registered backend (skips with the reason if unavailable)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from bench.backends import BACKENDS, OrtExecutionProvider, load_backend_class
from bench.backends.base import BackendUnavailable, LoadSpec, PrecisionMismatch
from bench.backends.ort import OrtCpu, OrtCuda
from bench.export import export_model
from bench.models import resolve_model
from bench.parity import compare_outputs


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    spec = resolve_model("simple_cnn")
    result = export_model(spec, spec.build_module(), "auto", 17, tmp_path_factory.mktemp("x"))
    assert result.ok
    return str(result.path)


@pytest.fixture(scope="module")
def reference():
    import torch

    spec = resolve_model("simple_cnn")
    module = spec.build_module()
    inputs = spec.make_inputs({"batch": 3}, seed=7)
    with torch.inference_mode():
        out = module(torch.from_numpy(inputs["input_image"])).numpy()
    return inputs, {"output_logits": out}


def _ready_backend(name: str, onnx_file: str, precision: str = "fp32"):
    cls = load_backend_class(BACKENDS[name].target)
    try:
        cls.check_available()
    except BackendUnavailable as exc:
        pytest.skip(f"{name} unavailable here: {exc}")
    backend = cls()
    source = onnx_file if cls.consumes == "onnx" else "simple_cnn"
    try:
        backend.load(LoadSpec(source, precision, {"input_image": (3, 3, 32, 32)}))
    except BackendUnavailable as exc:
        pytest.skip(f"{name} did not load here: {exc}")
    return backend


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_contract(name: str, onnx_file: str, reference) -> None:
    inputs, expected = reference
    backend = _ready_backend(name, onnx_file)
    try:
        backend.bind(inputs)
        backend.run()
        out = backend.outputs()
        assert set(out) == {"output_logits"}
        assert out["output_logits"].shape == (3, 10)
        report = compare_outputs(
            [out], [expected], rtol=1e-3, atol=1e-5, logits_outputs=["output_logits"]
        )
        assert report.passed, report.problems
        again = backend.infer(inputs)  # end-to-end path gives the same numbers
        np.testing.assert_allclose(
            again["output_logits"], out["output_logits"], rtol=1e-6, atol=1e-7
        )
        settings = backend.describe()
        assert all(isinstance(v, str) for v in settings.values())
        assert settings["precision"].startswith(("fp32", "f32", "float32"))
        with pytest.raises(ValueError, match="model inputs are"):
            backend.bind({"wrong_name": inputs["input_image"]})
    finally:
        backend.close()


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


class FallsBackToCpu(OrtCuda):
    """Claims CUDA is there: ONNX Runtime then falls back to the CPU, which `load` refuses."""

    name = "falls-back"

    @classmethod
    def check_available(cls) -> None:
        pass


def test_provider_that_falls_back_to_cpu_is_refused(onnx_file: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider: nothing falls back")
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider did not load; ONNX "):
        FallsBackToCpu().load(LoadSpec(onnx_file))


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
