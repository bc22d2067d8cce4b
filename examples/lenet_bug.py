"""The tutorial LeNet with 3x3 convolutions, sized by hand for 5x5 ones.

On a 1x32x32 image the last feature map is 16x6x6 (576 values), not 16x5x5 (400):
both the flatten and fc1 are wrong.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


# shapecheck: input=(16, 1, 32, 32)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


if __name__ == "__main__":
    net = Net()
    print(net(torch.randn(1, 1, 32, 32)))
