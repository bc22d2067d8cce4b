"""Sizes from a list: an element picked by index, and a loop variable over a list literal."""
import torch
import torch.nn as nn

SIZES = [24, 64, 32]  # expect: SC101


# shapecheck: input=(4, 20)
class MLP(nn.Module):
    def __init__(self, sizes=SIZES):
        super().__init__()
        layers = []
        for i in range(len(sizes) - 1):
            layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


# shapecheck: input=(4, 3, 32, 32)
class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.branches = nn.ModuleList()
        for width in [16, 16, 24]:  # expect: SC102
            self.branches.append(nn.Conv2d(width, 8, 1))

    def forward(self, x):
        x = self.stem(x)
        return torch.cat([branch(x) for branch in self.branches], 1)
