import torch.nn as nn


class SubPixel(nn.Module):
    def __init__(self, upscale):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.Conv2d(32, upscale ** 2, 3, padding=1))
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x):
        return self.shuffle(self.body(x))
