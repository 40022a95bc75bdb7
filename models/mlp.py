"""A small MLP over a flat feature vector: Linear -> ReLU -> Linear -> GELU -> Linear."""

from __future__ import annotations

from bench.models.spec import InputSpec, ModelSpec, OutputSpec, Tolerance


def _build():
    from torch import nn

    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.GELU(), nn.Linear(64, 10)
    )


def spec() -> ModelSpec:
    """mlp: features float32 [batch, 64] -> logits [batch, 10]."""
    return ModelSpec(
        name="mlp",
        build=_build,
        inputs=(InputSpec("features", ("batch", 64), "float32", "normal"),),
        outputs=(OutputSpec("logits", logits=True, shape=("batch", 10)),),
        # fp32 met by ort-cpu and openvino at opsets 13, 17, 18 (tests/test_models.py).
        tolerances={
            "fp32": Tolerance(rtol=1e-3, atol=1e-5),
            "bf16": Tolerance(rtol=5e-2, atol=5e-2),
        },
        description="Linear(64,128) -> ReLU -> Linear(128,64) -> GELU -> Linear(64,10)",
    )
