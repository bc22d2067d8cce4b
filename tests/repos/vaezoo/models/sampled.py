import torch
from torch import nn

try:
    import vaezoo_missing_speedups as speedups
except ImportError:
    speedups = None

from models import Autoencoder


class SampledAE(Autoencoder):
    """Draws several latent samples per input and decodes each of them."""

    def __init__(self, features, code_size, samples=4):
        super().__init__()
        self.samples = samples
        self.code_size = code_size
        self.encoder = nn.Linear(features, code_size)
        self.decoder = nn.Linear(code_size, features)
        self.fused = speedups is not None

    def forward(self, x):
        mu = self.encoder(x)
        z = mu.repeat(self.samples, 1, 1).permute(1, 0, 2)
        z = z + torch.randn_like(z)
        flat = z.view(-1, self.code_size)
        return self.decoder(flat).view(x.size(0), self.samples, -1)
