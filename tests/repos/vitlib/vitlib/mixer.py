import torch
import torch.nn as nn


class Mixer(nn.Module):
    """Mixes the channels of 8x8 patches.

    >>> m = Mixer(dim=16, depth=2)
    >>> m(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 16])
    """

    def __init__(self, dim, depth):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 8, stride=8)
        self.mix = nn.Sequential(*[nn.Linear(dim, dim) for _ in range(depth)])

    def forward(self, img):
        return self.mix(self.patch(img).flatten(2).mean(-1))
