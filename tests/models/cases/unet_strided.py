import torch
import torch.nn as nn


# shapecheck: input=(2, 3, 33, 33)
class StridedUNet(nn.Module):
    """Downsamples with a padded stride-2 convolution: nothing is floored away at 33, but 33
    goes to 17 and the decoder doubles 17 to 34."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.head = nn.Conv2d(16, 1, 1)

    def forward(self, x):
        skip = self.stem(x)
        x = self.up(self.down(skip))
        x = torch.cat([x, skip], dim=1)  # expect: SC301
        return self.head(x)
