"""Sizes from a config dataclass: the number to change is the field's default."""
from dataclasses import dataclass

import torch.nn as nn


@dataclass
class Config:
    n_embd: int = 48  # expect: SC101
    n_hidden: int = 64


class FeedForward(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.up = nn.Linear(config.n_embd, config.n_hidden)
        self.norm = nn.LayerNorm(config.n_hidden)

    def forward(self, x):
        return self.norm(self.up(x))


class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ffn = FeedForward(config)
        self.out = nn.Linear(config.n_hidden, 2)

    def forward(self, x):
        return self.out(self.ffn(x))


# shapecheck: input=(4, 10, 32)
model = Model(Config())
