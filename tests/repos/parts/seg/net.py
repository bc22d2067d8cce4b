import torch.nn as nn

from .layers import *


class SegNet(nn.Module):
    def __init__(self, channels=3, classes=2):
        super().__init__()
        self.stem = nn.Conv2d(channels, 16, 3, padding=1)
        self.down = Down(16, 32)
        self.head = Head(32, classes)

    def forward(self, x):
        return self.head(self.down(self.stem(x)))
