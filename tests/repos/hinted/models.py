import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)

    def forward(self, x):
        return self.conv(x)


# shapecheck: init(width=4, out=6)
class Decoder(nn.Module):
    def __init__(self, width, out):
        super().__init__()
        self.conv = nn.ConvTranspose2d(width, out, 3)

    def forward(self, z):
        return self.conv(z)
