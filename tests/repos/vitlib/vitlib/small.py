import torch
import torch.nn as nn


class TinyViT(nn.Module):
    """The variant for small datasets: one channel, a stack of `depth` mixing layers."""

    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, channels=1):
        super().__init__()
        patches = (image_size // patch_size) ** 2
        self.to_patch = nn.Conv2d(channels, dim, patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.randn(1, patches, dim))
        self.layers = nn.Sequential(*[nn.Linear(dim, dim) for _ in range(depth)])
        self.head = nn.Linear(dim, num_classes)

    def forward(self, img):
        x = self.to_patch(img).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.layers(x).mean(dim=1))
