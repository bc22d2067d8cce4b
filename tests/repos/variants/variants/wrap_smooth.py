"""A variant of the wrapper: labels smoothed by a learned temperature."""
import torch
import torch.nn as nn


class Trainer(nn.Module):
    def __init__(self, model, image_size, channels=3):
        super().__init__()
        self.model = model
        self.temperature = nn.Parameter(torch.ones(1))

    def forward(self, img):
        return (self.model(img) / self.temperature).softmax(-1)
