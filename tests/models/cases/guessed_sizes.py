import torch.nn as nn


class OddSizeOnly(nn.Module):  # expect: SC903
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 11 * 11, 10)

    def forward(self, x):
        x = self.pool(self.conv(x))
        return self.fc(x.view(x.size(0), 8 * 11 * 11))
