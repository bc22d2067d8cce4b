import torch.nn as nn


# shapecheck: input=(8, 3, 16, 16)
class PerChannel(nn.Module):
    """One row per channel reaches the output: 16·N rows for a batch of N."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(self.conv(x))
        x = x.view(-1, 16)  # expect: SC206
        return self.fc(x)


# shapecheck: input=(8, 3, 16, 16)
class PerChannelRegrouped(nn.Module):
    """Each channel's map goes through fc alone, then the rows are put back per sample."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        x = self.fc(self.pool(self.conv(x)).view(-1, 16))
        return x.view(x.size(0) // 16, -1)


# shapecheck: input=(8, 3, 16, 16)
class PerPixelOutput(nn.Module):
    """N·H·W rows of one pixel's channels each: a per-pixel head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.conv(x).permute(0, 2, 3, 1).reshape(-1, 16))


# shapecheck: input=(8, 12, 32)
class PerTokenOutput(nn.Module):
    """N·T rows of one token's features each: a per-token head."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 7)

    def forward(self, x):
        return self.fc(x.reshape(-1, 32))
