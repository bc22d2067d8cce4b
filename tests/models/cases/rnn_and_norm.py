import torch
import torch.nn as nn


# shapecheck: input=(8, 20, 32)
class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(64)  # expect: SC103
        self.lstm = nn.LSTM(input_size=16, hidden_size=64, batch_first=True)  # expect: SC104
        self.out = nn.Linear(64, 5)

    def forward(self, x):
        x = self.norm(x)
        h, _ = self.lstm(x)
        return self.out(h)


# shapecheck: input=(8, 3, 32, 32)
class BadNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)
        self.bn = nn.BatchNorm2d(32)  # expect: SC103
        self.fc = nn.Linear(16 * 30 * 30, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.bn(self.conv(x)), 1))
