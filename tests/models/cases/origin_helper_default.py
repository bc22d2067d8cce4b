"""A layer built in a helper module from a parameter: the number to change is the outer default."""
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


# shapecheck: input=(8, 3, 32, 32)
class Net(nn.Module):
    def __init__(self, in_ch=1, n_classes=10):  # expect: SC102
        super().__init__()
        self.stem = Block(in_ch, 32)
        self.body = Block(32, 32)
        self.head = nn.Conv2d(32, n_classes, 1)

    def forward(self, x):
        return self.head(self.body(self.stem(x)))
