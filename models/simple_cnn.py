"""The tutorial's model: Conv2d -> ReLU -> MaxPool -> Linear over 32x32 RGB images."""

from __future__ import annotations

from bench.models.spec import InputSpec, ModelSpec, OutputSpec, Tolerance


def _build():
    from torch import nn

    class SimpleCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1)
            self.relu = nn.ReLU()
            self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
            self.fc = nn.Linear(16 * 16 * 16, 10)

        def forward(self, x):
            x = self.pool(self.relu(self.conv(x)))
            return self.fc(x.flatten(1))

    return SimpleCNN()


def spec() -> ModelSpec:
    """simple_cnn: input_image float32 [batch, 3, 32, 32] -> output_logits [batch, 10]."""
    return ModelSpec(
        name="simple_cnn",
        build=_build,
        inputs=(InputSpec("input_image", ("batch", 3, 32, 32), "float32", "normal"),),
        outputs=(OutputSpec("output_logits", logits=True, shape=("batch", 10)),),
        # fp32 met by ort-cpu and openvino at opsets 13, 17, 18 (tests/test_models.py).
        tolerances={
            "fp32": Tolerance(rtol=1e-3, atol=1e-5),
            "bf16": Tolerance(rtol=5e-2, atol=5e-2),
        },
        description="Conv2d(3,16,3) -> ReLU -> MaxPool2d(2) -> Linear(4096,10)",
    )
