"""A module constant passed through a helper function: the number to change is the constant."""
import torch.nn as nn

IN_CHANNELS = 1  # expect: SC102


def conv_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


# shapecheck: input=(2, 3, 28, 28)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_block(IN_CHANNELS, 8), conv_block(8, 16))

    def forward(self, x):
        return self.features(x)
