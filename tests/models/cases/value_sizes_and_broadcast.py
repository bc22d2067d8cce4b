import torch
import torch.nn as nn


# shapecheck: input=(4, 10)
class Sparse(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 10)
        self.out = nn.Linear(10, 2)

    def forward(self, x):
        x = self.fc(x)
        idx = torch.nonzero(x > 0)
        y = x[x > 0]
        return self.out(x) + y.sum()


# shapecheck: input=(4, 3, 8, 8)
class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y + x[:, :1]  # expect: SC502
