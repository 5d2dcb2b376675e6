"""A small BERT-like text encoder built from ``torch.nn.TransformerEncoder`` (source
``text_encoder``): token and position embeddings, pre-norm encoder layers, and the
attention-masked mean of the last layer as the sentence embedding. Random weights, offline: a
stand-in with the shape of the encoders people deploy, for speed and numerical parity."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class EncoderShape:
    vocabulary: int
    width: int
    layers: int
    heads: int
    max_sequence: int


#: ``architecture`` of source text_encoder; "mini" is BERT-mini's shape, "tiny" for tests.
SHAPES = {
    "tiny": EncoderShape(vocabulary=1000, width=32, layers=2, heads=2, max_sequence=64),
    "mini": EncoderShape(vocabulary=30522, width=256, layers=4, heads=4, max_sequence=512),
}


def encoder_shape(architecture: str | None) -> EncoderShape:
    try:
        return SHAPES[architecture or "mini"]
    except KeyError:
        raise ConfigError(
            f"unknown text_encoder architecture {architecture!r}: choose from {', '.join(SHAPES)}"
        ) from None


def build_text_encoder(architecture: str | None):
    import torch
    from torch import nn

    shape = encoder_shape(architecture)

    class TextEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(shape.vocabulary, shape.width)
            self.positions = nn.Embedding(shape.max_sequence, shape.width)
            layer = nn.TransformerEncoderLayer(
                shape.width,
                shape.heads,
                4 * shape.width,
                dropout=0.0,
                batch_first=True,
                norm_first=True,
            )
            # no nested tensors: their fast path neither exports nor matches other backends
            self.encoder = nn.TransformerEncoder(layer, shape.layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(shape.width)

        def forward(self, input_ids, attention_mask):
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            hidden = self.tokens(input_ids) + self.positions(positions)[None]
            padding = attention_mask == 0
            # a float mask (-inf at padding): the boolean one takes the fused fast path in eval
            additive = torch.zeros_like(padding, dtype=hidden.dtype).masked_fill(
                padding, float("-inf")
            )
            hidden = self.norm(self.encoder(hidden, src_key_padding_mask=additive))
            weights = attention_mask.to(hidden.dtype)[..., None]
            return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    return TextEncoder()
