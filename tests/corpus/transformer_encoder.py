"""A Transformer encoder classifier with learned positions and a padding mask."""
import torch
import torch.nn as nn


# shapecheck: input=((2, 16, "int64"),)
class TextTransformer(nn.Module):
    def __init__(self, vocab=100, dim=32, heads=4, layers=2, max_len=64, n_classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.zeros(1, max_len, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, tokens):
        x = self.embed(tokens) + self.position[:, : tokens.size(1)]
        x = self.encoder(x, src_key_padding_mask=tokens == 0)
        return self.head(x.mean(dim=1))
