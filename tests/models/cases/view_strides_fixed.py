import torch
import torch.nn as nn


# shapecheck: input=(8, 20)
class SampledCodes(nn.Module):
    """Several latent samples per input, decoded one by one: the view after permute fails."""

    def __init__(self, features=20, code=5, samples=3):
        super().__init__()
        self.samples, self.code = samples, code
        self.encode = nn.Linear(features, code)
        self.decode = nn.Linear(code, features)

    def forward(self, x):
        z = self.encode(x).repeat(self.samples, 1, 1).permute(1, 0, 2)
        z = torch.tanh(z)
        flat = z.reshape(-1, self.code)
        return self.decode(flat).view(x.size(0), self.samples, -1)


# shapecheck: input=(4, 16, 32)
class HeadsMerged(nn.Module):
    """Attention heads split with view + transpose and merged back with contiguous().view."""

    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        h = self.qkv(x).view(b, t, self.heads, c // self.heads).transpose(1, 2)
        h = torch.softmax(h @ h.transpose(-2, -1), dim=-1) @ h
        return self.out(h.transpose(1, 2).contiguous().view(b, t, c))


# shapecheck: input=(4, 8, 6, 6)
class ChannelsLastRows(nn.Module):
    """Per-pixel rows taken with reshape after permute: reshape copies where it must."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        rows = self.conv(x).permute(0, 2, 3, 1).reshape(-1, 8)
        return self.head(rows).view(x.size(0), -1)
