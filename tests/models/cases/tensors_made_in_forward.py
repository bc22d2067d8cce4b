import torch
import torch.nn as nn

OFFSET = torch.ones(1, 8, 1, 1)


class Positions(nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(100, 16)
        self.positions = nn.Embedding(64, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        pos = torch.arange(x.size(1))
        return self.head(self.tokens(x) + self.positions(pos))


# shapecheck: input=(2, 3, 16, 16)
class Factories(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        y = y + torch.zeros(x.size(0), 8, 1, 1)
        y = y * torch.tensor([0.5, 2.0]).sum()
        y = y + torch.ones(x.size(0), 8, 1, 1).to(x.device)
        y = y + x.new_zeros(x.size(0), 8, 16, 16)
        return y + torch.randn(1, 8, 1, 1, device="cpu")


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + OFFSET  # expect: SC906
