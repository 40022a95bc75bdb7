"""The backend contract suite, shipped with bench so a backend plugin runs it in its own tests.

A plugin's tests subclass `BackendContract` and name the registered backend; pytest collects
the subclass (its name starts with `Test`) and runs every contract test against it:

```python
from bench.testing import BackendContract


class TestMyRt(BackendContract):
    backend_name = "my-rt"
    backend_options = {"provider.device_type": "CPU"}  # optional: LoadSpec.options
```

Several backends in one class: parametrize `backend_name` at class scope, as bench's own
`tests/test_backend_contract.py` does for every registered backend:

```python
@pytest.mark.parametrize("backend_name", ["my-rt", "my-rt-gpu"], scope="class")
class TestMine(BackendContract):
    pass
```

The contract: the class declares `name`, `device`, `consumes` ("onnx" or "torch"), the
precisions it supports (fp32 among them) and `fresh_worker`; on simple_cnn at batch 3 it
loads, binds, runs, returns the model's outputs by name, matching PyTorch eager within rtol
1e-3 / atol 1e-5; `infer()` gives the same numbers as bind/run/outputs; `describe()` reads
back string settings with the effective precision; `bind()` refuses wrong input names with
a ValueError; a throughput round works and leaves the backend usable; two instances
loaded at once keep their own inputs and outputs, and closing one leaves the other working
(a worker holds every cell of a backend loaded between interleaved trials); `close()` can be
called twice; every other precision it declares is either honoured (and read back) or
refused with `PrecisionMismatch`, never computed silently in another precision.

A backend that cannot run here (`check_available()` or `load()` raising
`BackendUnavailable`) makes its tests skip, with the reason and the install hint; a name
that is not registered fails, naming the registered ones. ONNX backends get an export of
simple_cnn (`opset`, default 17), made once per test session.

This module needs pytest (a dev dependency) and torch (for the reference outputs and the
export): only tests import it, never the rest of bench.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

try:
    import pytest
except ImportError as _exc:  # pragma: no cover - pytest is what runs this module
    raise ImportError(f"bench.testing needs pytest: pip install pytest ({_exc})") from _exc

from bench.backends import backend_entry, load_backend_class
from bench.backends.base import Backend, BackendUnavailable, LoadSpec, PrecisionMismatch
from bench.errors import BenchError

__all__ = ["BackendContract", "ready_backend", "simple_cnn_onnx", "simple_cnn_reference"]

MODEL = "simple_cnn"
BATCH = 3
SEED = 7
INPUT_SHAPES = {"input_image": (BATCH, 3, 32, 32)}
RTOL, ATOL = 1e-3, 1e-5
#: How `describe()["precision"]` may spell each bench precision.
PRECISION_SPELLINGS = {
    "fp32": ("fp32", "f32", "float32"),
    "bf16": ("bf16", "bfloat16"),
    "fp16": ("fp16", "f16", "float16"),
}

_EXPORTS: dict[tuple[str, int], str] = {}


def simple_cnn_onnx(tmp_path_factory: pytest.TempPathFactory, opset: int = 17) -> str:
    """simple_cnn exported at `opset` (exporter `auto`), once per test session and opset."""
    key = (str(tmp_path_factory.getbasetemp()), opset)
    if key not in _EXPORTS:
        from bench.export import export_model
        from bench.models import resolve_model

        spec = resolve_model(MODEL)
        folder = tmp_path_factory.mktemp(f"contract-export-op{opset}")
        result = export_model(spec, spec.build_module(), "auto", opset, folder)
        assert result.ok, result.error
        _EXPORTS[key] = str(result.path)
    return _EXPORTS[key]


def simple_cnn_reference(seed: int = SEED) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Seeded inputs at batch 3 and PyTorch eager's fp32 outputs for them."""
    import torch

    from bench.models import resolve_model

    spec = resolve_model(MODEL)
    module = spec.build_module()
    inputs = spec.make_inputs({"batch": BATCH}, seed=seed)
    with torch.inference_mode():
        out = module(torch.from_numpy(inputs["input_image"])).numpy()
    return inputs, {"output_logits": out}


def ready_backend(
    name: str,
    onnx_file: str,
    precision: str = "fp32",
    options: Mapping[str, str] | None = None,
) -> Backend:
    """The registered backend `name`, loaded with simple_cnn at batch 3; skips the calling
    test, with the reason and the install hint, where the backend cannot run here."""
    entry = backend_entry(name)
    cls = load_backend_class(entry.target)
    try:
        cls.check_available()
    except BackendUnavailable as exc:
        pytest.skip(f"{name} unavailable here: {exc} (install: {entry.install_hint})")
    backend = cls()
    source = onnx_file if cls.consumes == "onnx" else MODEL
    spec = LoadSpec(source, precision, dict(INPUT_SHAPES), options=dict(options or {}))
    try:
        backend.load(spec)
    except BackendUnavailable as exc:
        backend.close()
        pytest.skip(f"{name} did not load here: {exc}")
    except BaseException:
        backend.close()
        raise
    return backend


def _assert_matches_reference(out: dict[str, np.ndarray], expected: dict[str, Any]) -> None:
    from bench.parity import compare_outputs

    assert set(out) == {"output_logits"}
    assert out["output_logits"].shape == (BATCH, 10)
    report = compare_outputs(
        [out], [expected], rtol=RTOL, atol=ATOL, logits_outputs=["output_logits"]
    )
    assert report.passed, report.problems


class BackendContract:
    """The contract every backend meets; subclass it as `Test...` with `backend_name` set."""

    #: The registry name of the backend under test (parametrize `backend_name` for several).
    backend_name: ClassVar[str] = ""
    #: `LoadSpec.options` for every load, e.g. {"provider.device_type": "CPU"}.
    backend_options: ClassVar[Mapping[str, str]] = {}
    #: The opset of the simple_cnn export that ONNX backends load.
    opset: ClassVar[int] = 17

    # -- fixtures -------------------------------------------------------------------------

    @pytest.fixture(scope="class", name="backend_name")
    @classmethod
    def _backend_name(cls) -> str:
        if not cls.backend_name:
            pytest.fail(f"{cls.__name__}: set backend_name to a registered backend")
        return cls.backend_name

    @pytest.fixture(scope="class", name="contract_class")
    @classmethod
    def _contract_class(cls, backend_name: str) -> type[Backend]:
        try:
            entry = backend_entry(backend_name)
        except BenchError as exc:
            pytest.fail(str(exc))
        return load_backend_class(entry.target)

    @pytest.fixture(scope="class", name="contract_onnx")
    @classmethod
    def _contract_onnx(
        cls, contract_class: type[Backend], tmp_path_factory: pytest.TempPathFactory
    ) -> str:
        """The ONNX file ONNX backends load ("" for backends that consume the module)."""
        if contract_class.consumes != "onnx":
            return ""
        return simple_cnn_onnx(tmp_path_factory, cls.opset)

    @pytest.fixture(scope="class", name="contract_reference")
    @classmethod
    def _contract_reference(cls) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return simple_cnn_reference()

    @pytest.fixture(name="contract_backend")
    def _contract_backend(self, backend_name: str, contract_onnx: str) -> Iterator[Backend]:
        """A loaded backend, closed after the test."""
        backend = ready_backend(backend_name, contract_onnx, options=self.backend_options)
        try:
            yield backend
        finally:
            backend.close()

    # -- the contract ---------------------------------------------------------------------

    def test_declares_the_contract(self, contract_class: type[Backend]) -> None:
        from bench.models.spec import PRECISIONS

        assert issubclass(contract_class, Backend)
        assert isinstance(contract_class.name, str) and contract_class.name
        assert isinstance(contract_class.device, str) and contract_class.device
        assert contract_class.consumes in ("onnx", "torch")
        precisions = contract_class.precisions
        assert isinstance(precisions, tuple) and "fp32" in precisions
        assert set(precisions) <= set(PRECISIONS), f"bench knows precisions {PRECISIONS}"
        assert isinstance(contract_class.fresh_worker, bool)
        assert isinstance(contract_class.ROUND_DEPTH, int) and contract_class.ROUND_DEPTH >= 1

    def test_outputs_match_the_reference(self, contract_backend: Backend, contract_reference):
        inputs, expected = contract_reference
        contract_backend.bind(inputs)
        contract_backend.run()
        _assert_matches_reference(contract_backend.outputs(), expected)

    def test_infer_gives_the_same_numbers(self, contract_backend: Backend, contract_reference):
        inputs, _ = contract_reference
        contract_backend.bind(inputs)
        contract_backend.run()
        out = contract_backend.outputs()
        again = contract_backend.infer(inputs)  # end-to-end path gives the same numbers
        np.testing.assert_allclose(
            again["output_logits"], out["output_logits"], rtol=1e-6, atol=1e-7
        )

    def test_describe_reads_back_settings(self, contract_backend: Backend) -> None:
        settings = contract_backend.describe()
        assert settings and all(isinstance(v, str) for v in settings.values())
        assert settings["precision"].startswith(PRECISION_SPELLINGS["fp32"])

    def test_bind_refuses_wrong_input_names(self, contract_backend: Backend, contract_reference):
        inputs, _ = contract_reference
        with pytest.raises(ValueError, match="model inputs are"):
            contract_backend.bind({"wrong_name": inputs["input_image"]})

    def test_throughput_round(self, contract_backend: Backend, contract_reference) -> None:
        inputs, expected = contract_reference
        contract_backend.bind(inputs)
        contract_backend.run()
        requests = contract_backend.prepare_concurrent(2)
        assert isinstance(requests, int) and requests >= 1
        contract_backend.run_concurrent()
        contract_backend.bind(inputs)  # as the worker does after a throughput loop
        contract_backend.run()
        _assert_matches_reference(contract_backend.outputs(), expected)

    def test_loaded_instances_do_not_interfere(
        self, backend_name: str, contract_onnx: str, contract_reference
    ) -> None:
        """A worker keeps every cell of a backend loaded between interleaved trials, and
        closes one while the others go on."""
        inputs, expected = contract_reference
        other_inputs, other_expected = simple_cnn_reference(SEED + 1)
        first = ready_backend(backend_name, contract_onnx, options=self.backend_options)
        try:
            second = ready_backend(backend_name, contract_onnx, options=self.backend_options)
            try:
                first.bind(inputs)
                second.bind(other_inputs)
                first.run()
                second.run()
                _assert_matches_reference(first.outputs(), expected)
                _assert_matches_reference(second.outputs(), other_expected)
            finally:
                second.close()
            first.run()
            _assert_matches_reference(first.outputs(), expected)
        finally:
            first.close()

    def test_close_twice(self, contract_backend: Backend) -> None:
        contract_backend.close()
        contract_backend.close()

    def test_other_precisions_are_honoured_or_refused(
        self, backend_name: str, contract_class: type[Backend], contract_onnx: str
    ) -> None:
        others = [p for p in contract_class.precisions if p != "fp32"]
        if not others:
            pytest.skip(f"{backend_name} declares fp32 only")
        for precision in others:
            try:
                backend = ready_backend(
                    backend_name, contract_onnx, precision, options=self.backend_options
                )
            except PrecisionMismatch as exc:  # refused, loudly: never silently another
                assert str(exc)
                continue
            try:
                effective = backend.describe()["precision"]
                assert effective.startswith(PRECISION_SPELLINGS.get(precision, (precision,))), (
                    f"asked for {precision}, {backend_name} describes {effective!r}"
                )
            finally:
                backend.close()
