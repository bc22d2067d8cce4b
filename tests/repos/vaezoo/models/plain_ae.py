import torch
from torch import nn

from models import Autoencoder


class PlainAE(Autoencoder):
    def __init__(self, in_channels, code_size, widths=None, **kwargs):
        super().__init__()
        widths = widths or [16, 32]
        layers = []
        for width in widths:
            layers += [nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU()]
            in_channels = width
        self.encoder = nn.Sequential(*layers)
        self.to_code = nn.Linear(widths[-1] * 8 * 8, code_size)
        self.from_code = nn.Linear(code_size, widths[-1] * 8 * 8)
        self.last = widths[-1]

    def forward(self, x):
        code = self.to_code(torch.flatten(self.encoder(x), 1))
        return self.from_code(code).view(-1, self.last, 8, 8)
