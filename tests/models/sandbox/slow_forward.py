"""Models whose forward never ends: a loop of tensor ops. Each is stopped at the deadline; the
last model is correct except for its first layer, which must still be reported."""
import torch.nn as nn


# shapecheck: input=(2, 4)
class Endless(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x):
        x = self.act(self.fc(x))
        while True:
            x = x + 1


class EndlessUnknownInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        x = self.fc(x)
        while True:
            x = x * 2


# shapecheck: input=(2, 4)
class Wrong(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 4)

    def forward(self, x):
        return self.fc(x)
