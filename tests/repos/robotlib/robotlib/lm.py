"""A small language model built from a settings object through an alternative constructor;
its attention masks come from a causal table sliced to the sequence length."""
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class Settings:
    vocab: int
    dim: int = 32
    heads: int = 4
    context: int = 64


class Block(nn.Module):
    def __init__(self, settings):
        super().__init__()
        self.attn = nn.MultiheadAttention(settings.dim, settings.heads, batch_first=True)
        table = torch.tril(torch.ones(settings.context, settings.context)) == 0
        self.register_buffer("mask", table[None, None])

    def forward(self, x):
        t = x.size(1)
        return x + self.attn(x, x, x, attn_mask=self.mask[0, 0, :t, :t])[0]


class TinyLM(nn.Module):
    def __init__(self, settings: Settings):
        super().__init__()
        self.embed = nn.Embedding(settings.vocab, settings.dim)
        self.pos = nn.Parameter(torch.zeros(1, settings.context, settings.dim))
        self.blocks = nn.Sequential(Block(settings), Block(settings))
        self.head = nn.Linear(settings.dim, settings.vocab)

    @classmethod
    def from_settings(cls, settings):
        return cls(settings)

    def forward(self, idx):
        x = self.embed(idx) + self.pos[:, :idx.size(1)]
        return self.head(self.blocks(x))


if __name__ == "__main__":
    model = TinyLM.from_settings(Settings(vocab=100))
