"""An image model that upsamples with bilinear interpolation (ONNX Upsample/Resize).

Resize's coordinate semantics changed across opsets (Upsample in 9, Resize from 10, and
`coordinate_transformation_mode` from 11), which is what this model exercises.
"""

from __future__ import annotations

from bench.models.spec import InputSpec, ModelSpec, OutputSpec, Tolerance


def _build():
    import torch.nn.functional as F
    from torch import nn

    class UpsampleNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encode = nn.Conv2d(3, 8, 3, padding=1)
            self.decode = nn.Conv2d(8, 3, 3, padding=1)

        def forward(self, image):
            x = F.relu(self.encode(image))
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            return self.decode(x)

    return UpsampleNet()


def spec() -> ModelSpec:
    """upsample_net: image float32 [batch, 3, 32, 32] -> upsampled [batch, 3, 64, 64]."""
    return ModelSpec(
        name="upsample_net",
        build=_build,
        inputs=(InputSpec("image", ("batch", 3, 32, 32), "float32", "normal"),),
        outputs=(OutputSpec("upsampled", shape=("batch", 3, 64, 64)),),
        # fp32 met by ort-cpu and openvino at opsets 13, 17, 18 (tests/test_models.py).
        tolerances={
            "fp32": Tolerance(rtol=1e-3, atol=1e-5),
            "bf16": Tolerance(rtol=5e-2, atol=5e-2),
        },
        description="Conv -> ReLU -> bilinear interpolate x2 -> Conv",
    )
