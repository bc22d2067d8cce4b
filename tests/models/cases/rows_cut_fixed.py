import torch.nn as nn


# shapecheck: input=(8, 3, 16, 16)
class Cut(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(8)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool(self.conv(x))
        x = x.view(x.size(0), -1)
        return self.fc(x)


# shapecheck: input=(8, 3, 16, 16)
class PerPixel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(8)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(self.conv(x))
        return self.fc(x.permute(0, 2, 3, 1).reshape(-1, 64))


# shapecheck: input=(8, 12, 32)
class PerToken(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(x.reshape(-1, 32)).view(x.size(0), x.size(1), 10)


# shapecheck: input=(8, 3, 8, 8)
class WholeMaps(nn.Module):
    """Rows of whole 8×8 maps run, but fc is sized for one row per sample."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))
