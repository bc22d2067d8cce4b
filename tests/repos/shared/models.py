from torch import nn


class Residual(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.conv = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x)


class Encoder(nn.Module):
    """Two encoders share their last block: the training script passes it in."""

    def __init__(self, channels=3, dim=16, downsample=2, shared_block=None):
        super().__init__()
        layers = [nn.Conv2d(channels, dim, 3, padding=1)]
        for _ in range(downsample):
            layers += [nn.Conv2d(dim, dim * 2, 4, stride=2, padding=1), nn.ReLU()]
            dim *= 2
        self.body = nn.Sequential(*layers)
        self.shared_block = shared_block

    def forward(self, x):
        return self.shared_block(self.body(x))
