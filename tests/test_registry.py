from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import bench.backends as backends
from bench.backends import (
    BACKENDS,
    IGNORED_ENTRY_POINTS,
    availability,
    backend_entry,
    load_backend_class,
    register_backend,
    register_entry_points,
)
from bench.backends.base import Backend
from bench.errors import BenchError
from bench.models import MODELS, resolve_model

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def registry() -> Iterator[None]:
    """Restore the registry (mutated in place: other modules hold the same dict) after."""
    saved, ignored = dict(BACKENDS), list(IGNORED_ENTRY_POINTS)
    yield
    BACKENDS.clear()
    BACKENDS.update(saved)
    IGNORED_ENTRY_POINTS[:] = ignored


def test_register_backend_refuses_to_replace_a_name(registry) -> None:
    with pytest.raises(
        BenchError,
        match=r"backend 'ort-cpu' is already registered as bench\.backends\.ort:OrtCpu "
        r"\(registered in code\); pass replace=True",
    ):
        register_backend("ort-cpu", "my_pkg.fast:Fast", "pip install my-pkg")
    assert backend_entry("ort-cpu").target == "bench.backends.ort:OrtCpu"
    # the very same entry again replaces nothing: allowed
    register_backend("ort-cpu", "bench.backends.ort:OrtCpu", "pip install onnxruntime")
    register_backend("ort-cpu", "my_pkg.fast:Fast", "pip install my-pkg", replace=True)
    assert backend_entry("ort-cpu").target == "my_pkg.fast:Fast"


@dataclass(frozen=True)
class _Dist:
    name: str


@dataclass(frozen=True)
class _EntryPoint:
    """What the registry reads of an importlib.metadata.EntryPoint."""

    name: str
    value: str
    dist: _Dist | None = None


def test_entry_point_install_hint_names_its_distribution(registry) -> None:
    added = register_entry_points(
        [
            _EntryPoint("my-rt", "my_rt_bench.backend:MyRt", _Dist("my-rt-bench")),
            _EntryPoint("bare-rt", "bare.backend:Bare"),
        ]
    )
    assert added == ["my-rt", "bare-rt"]
    entry = backend_entry("my-rt")
    assert entry.install_hint == "pip install my-rt-bench"
    assert entry.dist == "my-rt-bench" and entry.target == "my_rt_bench.backend:MyRt"
    ok, reason = availability("my-rt")  # the module does not exist: the hint says what to do
    assert not ok and reason.endswith("(install: pip install my-rt-bench)")
    assert backend_entry("bare-rt").install_hint == (
        "install the package that provides bare.backend:Bare"
    )
    with pytest.raises(
        BenchError, match=r"'my-rt' is already registered .*entry point of my-rt-bench"
    ):
        register_backend("my-rt", "other:Other", "pip install other")


def test_entry_point_never_shadows_a_builtin_and_says_so(registry) -> None:
    shadow = _EntryPoint("ort-cpu", "evil_pkg.backend:Faster", _Dist("evil-pkg"))
    with pytest.warns(UserWarning, match="ignored entry point ort-cpu .* of evil-pkg"):
        assert register_entry_points([shadow]) == []
    assert backend_entry("ort-cpu").target == "bench.backends.ort:OrtCpu"
    assert IGNORED_ENTRY_POINTS[-1] == (
        "ignored entry point ort-cpu = 'evil_pkg.backend:Faster' of evil-pkg: backend "
        "'ort-cpu' is already registered as bench.backends.ort:OrtCpu (registered in code)"
    )
    # two distributions claiming one name: the first keeps it, the second is reported
    first = _EntryPoint("dup-rt", "a.backend:A", _Dist("dist-a"))
    second = _EntryPoint("dup-rt", "b.backend:B", _Dist("dist-b"))
    with pytest.warns(UserWarning, match="of dist-b: backend 'dup-rt' is already registered"):
        register_entry_points([first, second])
    assert backend_entry("dup-rt").dist == "dist-a"
    # the same entry point seen twice is one backend, not a conflict
    count = len(IGNORED_ENTRY_POINTS)
    register_entry_points([first])
    assert len(IGNORED_ENTRY_POINTS) == count


def test_fresh_worker_defaults_to_false() -> None:
    assert Backend.fresh_worker is False
    for name in ("ort-cpu", "ort-cuda", "openvino", "torch", "torch-cuda"):
        assert load_backend_class(backend_entry(name).target).fresh_worker is False

    class Compiled(load_backend_class(backend_entry("torch").target)):
        fresh_worker = True  # torch.compile's caches must not leak between cells

    assert Compiled.fresh_worker is True


def test_bench_testing_is_imported_only_by_tests() -> None:
    """bench.testing needs pytest, a dev dependency: nothing else in bench imports it."""
    code = (
        "import sys, bench.cli, bench.runner, bench.worker, bench.backends, bench.models\n"
        "assert 'bench.testing' not in sys.modules and 'pytest' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for folder in ("bench", "backends", "models"):
        for path in (ROOT / folder).rglob("*.py"):
            if path != ROOT / "bench" / "testing.py":
                assert "bench.testing" not in path.read_text(), path


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
