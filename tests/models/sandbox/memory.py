"""A constructor that takes gigabytes of real memory, and a model with a real shape bug."""
import torch
import torch.nn as nn


class Hungry(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = torch.ones(1024, 1024, 1024, device="cpu")
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Wrong(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(x)
