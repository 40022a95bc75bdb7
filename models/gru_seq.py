"""A GRU over a dynamic sequence length; outputs every step and a head on the last state."""

from __future__ import annotations

from bench.models.spec import InputSpec, ModelSpec, OutputSpec, Tolerance


def _build():
    from torch import nn

    class GruSeq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(input_size=16, hidden_size=32, batch_first=True)
            self.head = nn.Linear(32, 8)

        def forward(self, sequence):
            steps, last = self.gru(sequence)
            return steps, self.head(last[-1])

    return GruSeq()


def spec() -> ModelSpec:
    """gru_seq: sequence float32 [batch, seq, 16] -> steps [batch, seq, 32], logits [batch, 8]."""
    return ModelSpec(
        name="gru_seq",
        build=_build,
        inputs=(InputSpec("sequence", ("batch", "seq", 16), "float32", "normal"),),
        outputs=(
            OutputSpec("steps", shape=("batch", "seq", 32)),
            OutputSpec("logits", logits=True, shape=("batch", 8)),
        ),
        # fp32 met by ort-cpu and openvino at opsets 13, 17, 18 (tests/test_models.py).
        tolerances={
            "fp32": Tolerance(rtol=1e-3, atol=1e-5),
            "bf16": Tolerance(rtol=5e-2, atol=5e-2),
        },
        export_dims={"batch": 2, "seq": 5},
        default_dims={"seq": 24},
        description="GRU(16->32) over a dynamic sequence, Linear head on the last hidden state",
    )
