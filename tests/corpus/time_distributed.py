"""Per-pixel and per-token heads: reshapes whose rows are whole pixels or tokens."""
import torch.nn as nn


# shapecheck: input=(2, 8, 6, 6)
class PixelHead(nn.Module):
    def __init__(self, channels=8, n_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.classify = nn.Linear(channels, n_classes)

    def forward(self, x):
        y = self.conv(x)
        pixels = y.permute(0, 2, 3, 1).reshape(-1, y.size(1))
        return self.classify(pixels).view(x.size(0), x.size(2), x.size(3), -1)


# shapecheck: input=(2, 5, 12)
class TokenHead(nn.Module):
    def __init__(self, dim=12, tags=4):
        super().__init__()
        self.proj = nn.Linear(dim, tags)

    def forward(self, x):
        b, t, e = x.shape
        return self.proj(x.reshape(-1, e)).view(b, t, -1)
