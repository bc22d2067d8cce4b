import torch.nn as nn

FLAT = 16 * 5 * 5  # expect: SC101


# shapecheck: input=(4, 16, 6, 6)
class Head(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.fc = nn.Linear(FLAT, n_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


# shapecheck: input=(4, 32)
class Param(nn.Module):
    def __init__(self, width=64):  # expect: SC101
        super().__init__()
        self.fc = nn.Linear(width, 3)

    def forward(self, x):
        return self.fc(x)
