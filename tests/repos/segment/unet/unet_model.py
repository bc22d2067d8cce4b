"""A two-level U-Net: its sizes come from the caller (train.py)."""
import torch
import torch.nn as nn


def double_conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False):
        super().__init__()
        self.inc = double_conv(n_channels, 16)
        self.down = nn.Sequential(nn.MaxPool2d(2), double_conv(16, 32))
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.reduce = nn.Conv2d(32, 16, 1)
        else:
            self.up = nn.ConvTranspose2d(32, 32, 2, stride=2)
            self.reduce = nn.Conv2d(32, 16, 1)
        self.conv = double_conv(32, 16)
        self.outc = nn.Conv2d(16, n_classes, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.reduce(self.up(self.down(x1)))
        return self.outc(self.conv(torch.cat([x1, x2], dim=1)))
