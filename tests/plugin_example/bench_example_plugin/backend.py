"""The plugin's backend: ONNX Runtime's CPU execution provider with a provider option.

Everything else (session options, IO binding, throughput mode, refusing a session whose
provider did not load, reading settings back) comes from `OrtExecutionProvider`. The same
few lines with `provider = "OpenVINOExecutionProvider"` or `"TensorrtExecutionProvider"`
and that provider's options make a backend for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from bench.backends import OrtExecutionProvider


class ExampleOrt(OrtExecutionProvider):
    """ONNX Runtime, CPU execution provider, `use_arena=1` passed as a provider option.

    ONNX Runtime 1.32 reports no options back for the CPU provider, so the record shows
    `provider_options: use_arena=1 (not read back)`; for providers that report their options
    it shows any value ONNX Runtime reports differently from the one asked for.
    """

    name = "example-ort"
    device = "cpu"
    provider = "CPUExecutionProvider"
    provider_options: ClassVar[Mapping[str, str]] = {"use_arena": "1"}
