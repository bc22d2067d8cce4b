"""A variant written for one image size: its head counts 8 × 8 patches whatever it is given."""
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, image_size, patch, num_classes, dim=16):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.head = nn.Linear(dim * 64, num_classes)

    def forward(self, img):
        return self.head(self.embed(img).flatten(1))
