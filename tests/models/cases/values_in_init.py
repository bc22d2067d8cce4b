"""Constructors that read the values of small tensors they make: stochastic-depth rates from
`torch.linspace(...)`, a table from `torch.arange(...).tolist()`. Built on meta, these still
have their values; the model is checked, with no finding."""
import torch
import torch.nn as nn

SCALES = (1.0, 0.5, 0.25)


class DropPathNet(nn.Module):
    def __init__(self, depth=4, width=16, drop_path_rate=0.1):
        super().__init__()
        rates = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.Dropout(rate)) for rate in rates)
        self.offsets = torch.arange(depth).tolist()
        self.head = nn.Linear(width, len(SCALES))

    def forward(self, x):
        for block in self.blocks:
            x = x + block(x)
        return self.head(x)
