"""Test fixtures (not in the default zoo): models whose export must fail, and say why."""

from __future__ import annotations

from bench.models.spec import InputSpec, ModelSpec, OutputSpec

IMAGE = (InputSpec("x", ("batch", 4, 8, 8), "float32", "normal"),)


def _branchy():
    from torch import nn

    class Branchy(nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow
                return x * 2
            return x - 1

    return Branchy()


def _grid_sampler():
    import torch
    from torch import nn

    class GridSampler(nn.Module):
        def forward(self, x):
            theta = torch.tensor([[1.0, 0.1, 0.0], [0.0, 1.0, 0.1]]).expand(x.shape[0], 2, 3)
            grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
            # GridSample exists in ONNX from opset 16 only.
            return torch.nn.functional.grid_sample(x, grid, align_corners=False)

    return GridSampler()


def branchy() -> ModelSpec:
    return ModelSpec("branchy", _branchy, IMAGE, (OutputSpec("y"),))


def grid_sampler() -> ModelSpec:
    return ModelSpec("grid_sampler", _grid_sampler, IMAGE, (OutputSpec("y"),))


def _picky():
    from torch import nn

    class Picky(nn.Module):
        def forward(self, x):
            if x.shape[0] == 3:  # a shape the model refuses: fails in PyTorch itself
                raise ValueError("batch of 3 is not supported by this model")
            return x * 2

    return Picky()


def picky() -> ModelSpec:
    return ModelSpec("picky", _picky, IMAGE, (OutputSpec("y"),))


def _export_crasher():
    import os

    import torch
    from torch import nn

    class ExportCrasher(nn.Module):
        def forward(self, x):
            if torch.jit.is_tracing():  # TorchScript export: the process dies, as a native
                os.abort()  # crash inside torch.onnx.export would take it
            return x * 2

    return ExportCrasher()


def export_crasher() -> ModelSpec:
    """Runs in eager mode; aborts the process that exports it with TorchScript."""
    return ModelSpec("export_crasher", _export_crasher, IMAGE, (OutputSpec("y"),))


class _Dies:
    """A module whose forward aborts (or hangs): built lazily so importing this file is cheap."""

    def __new__(cls, how: str):
        import os
        import time

        from torch import nn

        class Dies(nn.Module):
            def forward(self, x):
                if how == "abort":
                    os.abort()
                if how == "exit0":
                    os._exit(0)
                if how == "chatty":  # valid: prints without a newline, then returns
                    print("noise-no-newline", end="", flush=True)
                    return x * 2
                time.sleep(10**6)
                return x

        return Dies()


def abort_forward():
    """The `(module, inputs)` form, with a forward that kills its process."""
    return _Dies("abort"), list(IMAGE)


def hang_forward():
    """The `(module, inputs)` form, with a forward that never returns."""
    return _Dies("hang"), list(IMAGE)


def exit0_forward():
    """The `(module, inputs)` form, with a forward that ends its process with status 0."""
    return _Dies("exit0"), list(IMAGE)


def chatty_forward():
    """The `(module, inputs)` form, with a valid forward that prints without a newline."""
    return _Dies("chatty"), list(IMAGE)
