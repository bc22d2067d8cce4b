import torch
import torch.nn as nn


# shapecheck: input=(2, 8, 6, 6)
class PixelHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.classify = nn.Linear(8, 3)

    def forward(self, x):
        pixels = self.conv(x).permute(0, 2, 3, 1).reshape(-1, 8)
        return self.classify(pixels).view(2, x.size(2), x.size(3), -1)  # expect: SC203


# shapecheck: input=(2, 4)
class Pair(nn.Module):
    """Two halves of a doubled batch: the constant 2 counts halves, not samples."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        first, second = self.fc(torch.cat([x, x.flip(1)])).view(2, -1, 3)
        return first - second
