"""U-Net with padded convolutions and skip connections joined by torch.cat."""
import torch
import torch.nn as nn


def double_conv(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


# shapecheck: input=(2, 3, 64, 64)
class UNet(nn.Module):
    def __init__(self, n_channels=3, n_classes=2, base=8):
        super().__init__()
        widths = [base, base * 2, base * 4, base * 8]
        self.downs = nn.ModuleList()
        c_in = n_channels
        for width in widths:
            self.downs.append(double_conv(c_in, width))
            c_in = width
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList()
        self.up_convs = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.ups.append(nn.ConvTranspose2d(width * 2, width, 2, stride=2))
            self.up_convs.append(double_conv(width * 2, width))
        self.out = nn.Conv2d(base, n_classes, 1)

    def forward(self, x):
        skips = []
        for index, down in enumerate(self.downs):
            x = down(x)
            if index < len(self.downs) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, conv, skip in zip(self.ups, self.up_convs, reversed(skips)):
            x = conv(torch.cat([skip, up(x)], dim=1))
        return self.out(x)
