import torch.nn as nn


class Net(nn.Module):  # expect: SC130
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(401, 2)  # expect: SC101

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))
