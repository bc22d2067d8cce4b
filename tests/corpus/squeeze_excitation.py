"""Squeeze-and-excitation blocks: channel weights from a pooled descriptor."""
import torch.nn as nn


class SEBlock(nn.Module):
    def __init__(self, channels, reduction=4):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.excite = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                    nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x):
        y = self.conv(x)
        b, c, _, _ = y.shape
        weights = self.excite(self.squeeze(y).view(b, c)).view(b, c, 1, 1)
        return x + y * weights


# shapecheck: input=(2, 3, 32, 32)
class SENet(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.blocks = nn.Sequential(SEBlock(16), nn.MaxPool2d(2), SEBlock(16), nn.MaxPool2d(2))
        self.fc = nn.Linear(16 * 8 * 8, n_classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).flatten(1))
