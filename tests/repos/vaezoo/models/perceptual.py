import torch
from torch import nn
from vaezoo_missing_vision import pretrained_features  # not installed: only the loss network needs it

from models import Autoencoder

NORMALIZE = pretrained_features.normalizer(mean=(0.5,), std=(0.5,))  # used by the data pipeline only


class PerceptualAE(Autoencoder):
    def __init__(self, in_channels, code_size):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(in_channels, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        self.to_code = nn.Linear(8 * 16 * 16, code_size)

    def forward(self, x):
        return self.to_code(self.encoder(x))


class FeatureLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = pretrained_features(layers=4)

    def forward(self, x, y):
        return torch.mean((self.features(x) - self.features(y)) ** 2)
