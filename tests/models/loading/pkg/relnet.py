import torch.nn as nn

from .blocks import Block


class RelNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()

    def forward(self, x):
        return self.block(x)
