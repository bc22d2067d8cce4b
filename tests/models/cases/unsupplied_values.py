import torch
import torch.nn as nn


class SharedTrunk(nn.Module):
    def __init__(self, shared_block=None):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.shared_block = shared_block

    def forward(self, x):
        return self.shared_block(self.stem(x))  # expect: SC904


class Conditional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, img, labels):  # expect: SC903
        return self.conv(img)[:, :, int(labels[0, 1]):]  # the labels' values, not only their shape


# shapecheck: input=(4, 16)
class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x, mask=None):
        return self.fc(x).masked_fill(mask, 0.0)  # expect: SC903
