"""Wraps a model with the image size it is trained at."""
import torch
import torch.nn as nn


class Trainer(nn.Module):
    def __init__(self, model, image_size, channels=3):
        super().__init__()
        self.model = model
        self.image_size = image_size

    def forward(self, img):
        return self.model(img).softmax(-1)
