"""A residual CNN with BatchNorm (eval mode: running statistics folded at export)."""

from __future__ import annotations

from bench.models.spec import InputSpec, ModelSpec, OutputSpec, Tolerance


def _build():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(x + self.bn2(self.conv2(y)))

    class ResNetSmall(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
            )
            self.blocks = nn.Sequential(Block(16), Block(16))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))

    model = ResNetSmall()
    # Non-trivial running statistics, so eval-mode BatchNorm really does something.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                mean, var = module.running_mean, module.running_var
                if mean is None or var is None:  # track_running_stats is on (the default)
                    raise ValueError("BatchNorm2d without running statistics")
                mean.uniform_(-0.2, 0.2)
                var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


def spec() -> ModelSpec:
    """resnet_small: image float32 [batch, 3, 32, 32] -> logits [batch, 10]."""
    return ModelSpec(
        name="resnet_small",
        build=_build,
        inputs=(InputSpec("image", ("batch", 3, 32, 32), "float32", "normal"),),
        outputs=(OutputSpec("logits", logits=True, shape=("batch", 10)),),
        # fp32 met by ort-cpu and openvino at opsets 13, 17, 18 (tests/test_models.py).
        tolerances={
            "fp32": Tolerance(rtol=1e-3, atol=1e-5),
            "bf16": Tolerance(rtol=5e-2, atol=5e-2),
        },
        description="conv-BN-ReLU stem, two residual blocks with BatchNorm, avg pool, Linear",
    )
