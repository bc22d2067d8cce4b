"""A Transformer decoder attending to encoded memory, with a causal mask."""
import torch
import torch.nn as nn


# shapecheck: input=((2, 10, "int64"), (2, 14, 32))
class CaptionDecoder(nn.Module):
    def __init__(self, vocab=60, dim=32, heads=4, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        layer = nn.TransformerDecoderLayer(dim, heads, dim_feedforward=64, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.out = nn.Linear(dim, vocab)

    def forward(self, tokens, memory):
        length = tokens.size(1)
        mask = torch.triu(torch.full((length, length), float("-inf"), device=tokens.device), diagonal=1)
        return self.out(self.decoder(self.embed(tokens), memory, tgt_mask=mask))
