"""A model configured by a table of settings, with a head object handed to it."""
import torch
import torch.nn as nn


class Base(nn.Module):
    """Shared plumbing: subclasses say what forward does."""

    def count(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, *inputs):
        raise NotImplementedError


class ReconstructionHead(nn.Module):
    def __init__(self, dim, patch, channel_first):
        super().__init__()
        self.channel_first = channel_first
        self.to_pixels = nn.Linear(dim, 3 * patch * patch)

    def forward(self, tokens):
        pixels = self.to_pixels(tokens)
        return pixels.transpose(1, 2) if self.channel_first else pixels


class Slots(Base):
    def __init__(self, dim, num_slots, heads, softmax_over_slots):
        super().__init__()
        self.softmax_over_slots = softmax_over_slots
        self.slots = nn.Parameter(torch.randn(num_slots, dim))
        self.proj = nn.Linear(dim, dim)
        self.heads = nn.ModuleList(heads)

    def forward(self, tokens):
        attn = torch.einsum("bnd,sd->bns", self.proj(tokens), self.slots)
        attn = attn.softmax(dim=-1 if self.softmax_over_slots else 1)
        slots = torch.einsum("bns,bnd->bsd", attn, tokens)
        return slots, [head(tokens) for head in self.heads]


if __name__ == "__main__":
    settings = (
        (False, False),
        (True, True),
    )
    for softmax_over_slots, channel_first in settings:
        head = ReconstructionHead(dim=24, patch=8, channel_first=channel_first)
        model = Slots(dim=24, num_slots=5, heads=[head], softmax_over_slots=softmax_over_slots)
        tokens = torch.randn(2, 16, 24)
        slots, (pixels,) = model(tokens)
        assert slots.shape == (2, 5, 24)


class Probe(nn.Module):
    """Layers trained one at a time: it is used through `predict`, never called."""

    def __init__(self, dims):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))

    def predict(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return x.argmax(dim=1)


class Switch(nn.Module):
    """Its forward is chosen when it is built."""

    def __init__(self, dim=24):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.forward = self.fast

    def fast(self, x):
        return self.proj(x)
