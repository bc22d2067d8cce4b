"""Inception modules: parallel branches joined along the channels."""
import torch
import torch.nn as nn


class Inception(nn.Module):
    def __init__(self, c_in, c1, c3, c5, cp):
        super().__init__()
        self.b1 = nn.Conv2d(c_in, c1, 1)
        self.b3 = nn.Sequential(nn.Conv2d(c_in, c3 // 2, 1), nn.ReLU(), nn.Conv2d(c3 // 2, c3, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(c_in, c5 // 2, 1), nn.ReLU(), nn.Conv2d(c5 // 2, c5, 5, padding=2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c_in, cp, 1))
        self.out_channels = c1 + c3 + c5 + cp

    def forward(self, x):
        return torch.relu(torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1))


# shapecheck: input=(2, 3, 32, 32)
class GoogLeNetSmall(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU())
        self.a = Inception(32, 8, 16, 8, 8)
        self.b = Inception(self.a.out_channels, 16, 24, 8, 8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(self.b.out_channels, n_classes)

    def forward(self, x):
        x = self.b(self.pool(self.a(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
