"""A temporal convolutional network: dilated causal 1-D convolutions with residuals."""
import torch.nn as nn
import torch.nn.functional as F


class CausalBlock(nn.Module):
    def __init__(self, c_in, c_out, kernel, dilation):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x):
        return F.relu(self.conv(F.pad(x, (self.pad, 0)))) + self.skip(x)


# shapecheck: input=(2, 4, 50)
class TCN(nn.Module):
    def __init__(self, channels=(4, 16, 16, 32), kernel=3):
        super().__init__()
        self.blocks = nn.Sequential(*[CausalBlock(channels[i], channels[i + 1], kernel, 2 ** i)
                                      for i in range(len(channels) - 1)])
        self.out = nn.Linear(channels[-1], 1)

    def forward(self, x):
        return self.out(self.blocks(x)[:, :, -1])
