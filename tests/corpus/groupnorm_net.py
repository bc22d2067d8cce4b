"""Depthwise-separable convolutions with group normalisation and a strided downsampling."""
import torch.nn as nn


def separable(c_in, c_out, stride=1):
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in), nn.Conv2d(c_in, c_out, 1),
                         nn.GroupNorm(4, c_out), nn.SiLU())


# shapecheck: input=(2, 3, 48, 48)
class SeparableNet(nn.Module):
    def __init__(self, n_classes=6):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.GroupNorm(4, 16), nn.SiLU())
        self.body = nn.Sequential(separable(16, 32, 2), separable(32, 32), separable(32, 64, 2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes))

    def forward(self, x):
        return self.head(self.body(self.stem(x)))
