import torch
import torch.nn as nn


# shapecheck: input=(4, 10)
class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 10)
        self.out = nn.Linear(10, 2)

    def forward(self, x):
        x = self.fc(x)
        if x.mean() > 0:  # expect: SC906
            x = x * 2
        return self.out(x)
