"""A small transformer encoder over token ids with an attention mask (int64 inputs).

Embedding + learned positions, two pre-norm layers of multi-head self-attention and a GELU
feed-forward, LayerNorm; outputs the hidden states and masked-mean-pooled class logits.
Attention is written out (no fused fast path) so that every exporter sees plain operators.
"""

from __future__ import annotations

from bench.models.spec import InputSpec, ModelSpec, OutputSpec, Tolerance

VOCAB, WIDTH, HEADS, LAYERS, MAX_LEN, CLASSES = 1000, 64, 4, 2, 512, 4


def _build():
    import math

    import torch
    from torch import nn

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(WIDTH)
            self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
            self.out = nn.Linear(WIDTH, WIDTH)
            self.norm2 = nn.LayerNorm(WIDTH)
            self.ff = nn.Sequential(
                nn.Linear(WIDTH, 2 * WIDTH), nn.GELU(), nn.Linear(2 * WIDTH, WIDTH)
            )

        def forward(self, x, bias):
            b, s, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
            q, k, v = (t.reshape(b, s, HEADS, WIDTH // HEADS).transpose(1, 2) for t in (q, k, v))
            scores = q @ k.transpose(-2, -1) / math.sqrt(WIDTH // HEADS) + bias
            attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, s, WIDTH)
            x = x + self.out(attended)
            return x + self.ff(self.norm2(x))

    class TinyTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(VOCAB, WIDTH)
            self.positions = nn.Embedding(MAX_LEN, WIDTH)
            self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
            self.norm = nn.LayerNorm(WIDTH)
            self.classify = nn.Linear(WIDTH, CLASSES)

        def forward(self, input_ids, attention_mask):
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            x = self.tokens(input_ids) + self.positions(positions)[None]
            mask = attention_mask.to(x.dtype)
            bias = (1.0 - mask)[:, None, None, :] * -1e4  # padded keys get no attention
            for layer in self.layers:
                x = layer(x, bias)
            hidden = self.norm(x)
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            return hidden, self.classify(pooled)

    return TinyTransformer()


def spec() -> ModelSpec:
    """tiny_transformer: input_ids, attention_mask int64 [batch, seq] -> hidden, logits."""
    return ModelSpec(
        name="tiny_transformer",
        build=_build,
        inputs=(
            InputSpec("input_ids", ("batch", "seq"), "int64", "int", low=0, high=VOCAB),
            InputSpec("attention_mask", ("batch", "seq"), "int64", "mask"),
        ),
        outputs=(
            OutputSpec("last_hidden_state", shape=("batch", "seq", WIDTH)),
            OutputSpec("logits", logits=True, shape=("batch", CLASSES)),
        ),
        # fp32 met by ort-cpu and openvino at opsets 13, 17, 18 (tests/test_models.py).
        tolerances={
            "fp32": Tolerance(rtol=1e-3, atol=1e-5),
            "bf16": Tolerance(rtol=5e-2, atol=5e-2),
        },
        export_dims={"batch": 2, "seq": 7},
        default_dims={"seq": 32},
        description="2-layer pre-norm transformer encoder, 4 heads, width 64, GELU, LayerNorm",
    )
