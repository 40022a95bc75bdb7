from __future__ import annotations

import pytest

import bench.backends as backends
from bench.backends import BACKENDS, availability, backend_entry, load_backend_class
from bench.backends.base import Backend
from bench.errors import BenchError
from bench.models import MODELS, resolve_model


def test_builtin_backends_registered_with_hints() -> None:
    for name in ("ort-cpu", "ort-cuda", "openvino", "torch"):
        entry = backend_entry(name)
        assert entry.install_hint
        cls = load_backend_class(entry.target)
        assert issubclass(cls, Backend)
        assert cls.name == name
        assert cls.consumes in ("onnx", "torch")


def test_unknown_backend_names_valid_choices_and_suggests() -> None:
    with pytest.raises(
        BenchError, match=r"unknown backend 'ort-cpux' \(did you mean 'ort-cpu'\?\); valid: ort-cpu"
    ):
        backend_entry("ort-cpux")


def test_unknown_model_names_valid_choices() -> None:
    with pytest.raises(BenchError, match=r"unknown model 'simple_cn'.*valid: simple_cnn"):
        resolve_model("simple_cn")


def test_register_backend_is_one_line() -> None:
    backends.register_backend("my-ort", "bench.backends.ort:OrtCpu", "pip install onnxruntime")
    try:
        assert load_backend_class(backend_entry("my-ort").target).name == "ort-cpu"
    finally:
        BACKENDS.pop("my-ort")


def test_fresh_worker_defaults_to_false() -> None:
    assert Backend.fresh_worker is False
    for name in ("ort-cpu", "ort-cuda", "openvino", "torch", "torch-cuda"):
        assert load_backend_class(backend_entry(name).target).fresh_worker is False

    class Compiled(load_backend_class(backend_entry("torch").target)):
        fresh_worker = True  # torch.compile's caches must not leak between cells

    assert Compiled.fresh_worker is True


def test_ort_cuda_unavailable_reason_on_cpu_build() -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    ok, reason = availability("ort-cuda")
    assert not ok
    assert "no CUDAExecutionProvider" in reason
    assert "[gpu]" in reason  # the install hint names the swap to onnxruntime-gpu


def test_simple_cnn_spec_matches_tutorial() -> None:
    assert "simple_cnn" in MODELS
    spec = resolve_model("simple_cnn")
    assert spec.input_names == ["input_image"]
    assert spec.output_names == ["output_logits"]
    assert spec.inputs[0].shape == ("batch", 3, 32, 32)
    x = spec.make_inputs({"batch": 4}, seed=0)["input_image"]
    assert x.shape == (4, 3, 32, 32) and x.dtype.name == "float32"
    module = spec.build_module()
    assert not module.training
    layers = [type(m).__name__ for m in module.children()]
    assert layers == ["Conv2d", "ReLU", "MaxPool2d", "Linear"]
    assert module.fc.in_features == 16 * 16 * 16 and module.fc.out_features == 10


def test_seeded_weights_are_the_same_model_every_time() -> None:
    spec = resolve_model("simple_cnn")
    a, b = spec.build_module(), spec.build_module()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert (pa == pb).all()


def test_user_model_from_file(tmp_path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(
        "from bench.models.simple_cnn import spec as base\n"
        "from dataclasses import replace\n"
        "def make():\n    return replace(base(), name='mine')\n"
    )
    assert resolve_model(f"{path}:make").name == "mine"
    with pytest.raises(BenchError, match="has no function 'nope'"):
        resolve_model(f"{path}:nope")
