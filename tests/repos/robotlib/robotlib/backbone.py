"""A patch encoder that the other models of the package are built around."""
import torch
import torch.nn as nn


class Backbone(nn.Module):
    def __init__(self, image_size, patch, dim):
        super().__init__()
        self.patch = patch
        self.embed = nn.Linear(3 * patch * patch, dim)
        self.pos = nn.Parameter(torch.zeros((image_size // patch) ** 2, dim))

    def forward(self, img):
        b, c, h, w = img.shape
        p = self.patch
        tokens = img.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * p * p)
        return self.embed(tokens) + self.pos
