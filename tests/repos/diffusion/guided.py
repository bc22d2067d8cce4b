"""A class-conditioned denoiser: images, a time step and a class per sample; the class
embedding is replaced by a learned null embedding for a random part of the batch."""
import math

import torch
import torch.nn as nn


class TimeEmbedding(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        freqs = torch.exp(torch.arange(self.dim // 2, device=t.device) * -(math.log(10000) / (self.dim // 2 - 1)))
        angles = t[:, None] * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class Denoiser(nn.Module):
    def __init__(self, dim=16, num_classes=10, drop_prob=0.5):
        super().__init__()
        self.drop_prob = drop_prob
        self.classes_emb = nn.Embedding(num_classes, dim)
        self.null_emb = nn.Parameter(torch.randn(dim))
        self.time_mlp = nn.Sequential(TimeEmbedding(dim), nn.Linear(dim, dim))
        self.init_conv = nn.Conv2d(3, dim, 3, padding=1)
        self.down = nn.Sequential(nn.Conv2d(dim, dim, 4, 2, 1), nn.Conv2d(dim, dim, 4, 2, 1),
                                  nn.Conv2d(dim, dim, 4, 2, 1))
        self.up = nn.Sequential(nn.ConvTranspose2d(dim, dim, 4, 2, 1), nn.ConvTranspose2d(dim, dim, 4, 2, 1),
                                nn.ConvTranspose2d(dim, dim, 4, 2, 1))
        self.out = nn.Conv2d(2 * dim, 3, 1)

    def forward(self, x, time, classes):
        emb = self.classes_emb(classes)
        keep = torch.rand(x.shape[0], device=x.device) < 1 - self.drop_prob
        emb = torch.where(keep[:, None], emb, self.null_emb.expand(x.shape[0], -1))
        h = self.init_conv(x)
        skip = h
        h = h + (self.time_mlp(time) + emb)[:, :, None, None]
        h = self.up(self.down(h))  # three halvings: the sides must be multiples of 8
        return self.out(torch.cat((h, skip), dim=1))


if __name__ == "__main__":
    model = Denoiser(dim=16, num_classes=10)
