"""Forwards of several tensors, none with an example: each input is worked out from the model."""
import torch
import torch.nn as nn


class LabelledGenerator(nn.Module):
    """Noise scaled by a label embedding (labels are class indices of shape N)."""

    def __init__(self, classes=10, latent=64, size=16):
        super().__init__()
        self.size = size
        self.label_emb = nn.Embedding(classes, latent)
        self.fc = nn.Linear(latent, size * size)

    def forward(self, noise, labels):
        x = self.fc(torch.mul(self.label_emb(labels), noise))
        return x.view(x.size(0), 1, self.size, self.size)


class PairDiscriminator(nn.Module):
    """Two images concatenated on the channel axis before the first convolution."""

    def __init__(self, channels=3):
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, 8, 4, stride=2, padding=1)
        self.out = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, img_a, img_b):
        return self.out(self.conv(torch.cat((img_a, img_b), 1)))


class TimeEmbedding(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        freqs = torch.arange(self.dim // 2, device=t.device).float()
        angles = t[:, None].float() * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class Denoiser(nn.Module):
    """An image and its diffusion time step (a float per sample)."""

    def __init__(self, channels=3, dim=16):
        super().__init__()
        self.time = nn.Sequential(TimeEmbedding(dim), nn.Linear(dim, dim))
        self.conv = nn.Conv2d(channels, dim, 3, padding=1)
        self.out = nn.Conv2d(dim, channels, 3, padding=1)

    def forward(self, x, time):
        h = self.conv(x) + self.time(time)[:, :, None, None]
        return self.out(h)


class CodeGenerator(nn.Module):
    """An image and a latent code broadcast over it; the image shape is a constructor argument."""

    def __init__(self, latent=8, img_shape=(3, 32, 32)):
        super().__init__()
        channels, self.h, self.w = img_shape
        self.fc = nn.Linear(latent, self.h * self.w)
        self.conv = nn.Conv2d(channels + 1, channels, 3, padding=1)

    def forward(self, x, z):
        z = self.fc(z).view(z.size(0), 1, self.h, self.w)
        return self.conv(torch.cat((x, z), 1))
