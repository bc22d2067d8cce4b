"""Building blocks imported by loader_cases.py as a sibling module."""

import torch.nn as nn

LOADED_FROM = "sibling"


class ConvBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x))
