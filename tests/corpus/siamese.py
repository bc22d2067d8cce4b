"""A Siamese network: one encoder applied to two images, their embeddings compared."""
import torch
import torch.nn as nn


# shapecheck: input=((2, 1, 28, 28), (2, 1, 28, 28))
class Siamese(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(),
                                     nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, dim))
        self.head = nn.Linear(dim, 1)

    def forward(self, first, second):
        distance = torch.abs(self.encoder(first) - self.encoder(second))
        return torch.sigmoid(self.head(distance))
