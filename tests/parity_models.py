"""Test fixtures for parity that explains itself (not in the default zoo): models whose
numbers are hard on purpose. Each says what a correct harness must conclude about it."""

from __future__ import annotations

from bench.models.spec import InputSpec, ModelSpec, OutputSpec

FEATURES = (InputSpec("x", ("batch", 64), "float32", "normal"),)


def _batch_scaled():
    from torch import nn

    class BatchScaled(nn.Module):
        """Scales by 2 / batch size through a Python int: a TorchScript trace keeps the
        example's batch (2), so the export is right at batch 2 and wrong at any other."""

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 8)

        def forward(self, x):
            return self.fc(x) * (2.0 / int(x.shape[0]))

    return BatchScaled()


def batch_scaled() -> ModelSpec:
    """Export fault at batch sizes other than the example's: attribution `export`."""
    return ModelSpec("batch_scaled", _batch_scaled, FEATURES, (OutputSpec("y"),))


def _cancelling():
    import torch
    from torch import nn

    class Cancelling(nn.Module):
        """One matrix product whose large terms cancel: W x - W x + S x, summed together in
        fp32 with partial sums near 1e4 for a result near 1. Ill-conditioned at fp32: PyTorch's
        own fp32 error against fp64 is far beyond rtol 1e-3, and any runtime that sums in
        another order lands as far from PyTorch fp32, but no farther from the truth."""

        def __init__(self) -> None:
            super().__init__()
            big = torch.randn(8, 64) * 1e3
            small = torch.randn(8, 64) * 0.1
            self.register_buffer("weight", torch.cat([big, -big, small], dim=1))

        def forward(self, x):
            return torch.cat([x, x, x], dim=1) @ self.weight.T

    return Cancelling()


def cancelling() -> ModelSpec:
    """Ill-conditioned model: allclose fails, the noise-floor verdict passes (`model`)."""
    return ModelSpec("cancelling", _cancelling, FEATURES, (OutputSpec("y"),))


def _fixed_fp32():
    import torch
    from torch import nn

    class FixedFp32(nn.Module):
        """Casts its weight to float32 inside forward: there is no float64 run of it."""

        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(8, 64))

        def forward(self, x):
            return x @ self.weight.float().T

    return FixedFp32()


def fixed_fp32() -> ModelSpec:
    """No fp64 oracle (float64 cannot run): parity falls back to allclose against fp32."""
    return ModelSpec("fixed_fp32", _fixed_fp32, FEATURES, (OutputSpec("y"),))
