"""Small image models for input inference: one size, any size, and none."""
import torch.nn as nn


class OnlyThirtyTwo(nn.Module):
    """A 5x5 convolution and a Linear sized for 28x28 maps: 32x32 images only."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 5)
        self.fc = nn.Linear(6 * 28 * 28, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class AnySize(nn.Module):
    """Two 3x3 convolutions and global pooling: any image of at least 5x5."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class NoSize(nn.Module):
    """Pooled to 5x5 by 16 channels (400 values) but read by a Linear of 401: nothing fits."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3)
        self.pool = nn.AdaptiveAvgPool2d(5)
        self.fc = nn.Linear(401, 10)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(1))


class ChannelsWrong(nn.Module):
    """conv2 expects 8 channels where conv1 gives 6: no image size helps."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(8, 16, 3)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class Volume(nn.Module):
    """A Conv3d with a stride of 2 and a Linear over a 3x3x3 map: D, H, W each 7 or 8."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 3, stride=2)
        self.fc = nn.Linear(2 * 27, 1)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class Reshaped(nn.Module):
    """view(-1, 102) after 4 channels: the values per sample, 4·H·(W+2), are never 102."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 1, padding=(0, 1))
        self.fc = nn.Linear(102, 2)

    def forward(self, x):
        x = self.conv(x)
        return self.fc(x.view(-1, 102))
