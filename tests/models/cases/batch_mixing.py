import torch.nn as nn
import torch.nn.functional as F

BATCH = 16


# shapecheck: input=(16, 3, 24, 24)
class Mixer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 128, 3, padding=1)
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(8192, 2)  # expect: SC101

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        x = x.view(-1, 8192)  # expect: SC202
        return self.fc(x)


# shapecheck: input=(16, 3, 24, 24)
class Fixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 128, 3, padding=1)
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(128 * 6 * 6, 2)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        x = x.view(BATCH, -1)  # expect: SC203
        return self.fc(x)
