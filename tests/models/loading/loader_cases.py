"""A training script with models in it: only the models may be loaded."""
from __future__ import annotations

import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from sibling_blocks import ConvBlock, LOADED_FROM

try:
    import not_a_real_module_xyz as optional_dep
except ImportError:
    optional_dep = None

BATCH = 16
HIDDEN = 4 * 32
SIZES = (BATCH, 1, 28, 28)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

data = torch.randn(60000, 1, 28, 28)
loader = DataLoader(TensorDataset(data), batch_size=BATCH)
print("this line must not run")
torch.manual_seed(0)


# shapecheck: input=(16, 1, 28, 28)
class Net(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.block = ConvBlock(1, 8)
        self.fc = nn.Linear(8 * 28 * 28, n_classes)

    def forward(self, x):
        x = self.block(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


class Head(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x):
        return F.relu(self.fc(x))


def make_mlp(width):
    layers = []
    for _ in range(2):
        layers.append(nn.Linear(width, width))
    return nn.Sequential(*layers)


def train(model):
    for batch in loader:
        model(batch[0]).sum().backward()


model = Net().to(device)
seq = nn.Sequential(nn.Linear(HIDDEN, 64), nn.ReLU(), nn.Linear(64, 10))
mlp = make_mlp(HIDDEN)
broken = Head(undefined_width, 3)

for epoch in range(3):
    train(model)

with open(os.devnull, "w") as sink:
    sink.write("no")

if __name__ == "__main__":
    with open(os.environ["SHAPECHECK_TEST_MARKER"], "w") as marker:
        marker.write("main block ran")
    raise SystemExit("the main block must never run")
