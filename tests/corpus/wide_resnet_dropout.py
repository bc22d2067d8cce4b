"""A wide residual network block stack with dropout between convolutions and pre-activation."""
import torch.nn as nn
import torch.nn.functional as F


class WideBlock(nn.Module):
    def __init__(self, c_in, c_out, stride, dropout=0.3):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(self.dropout(out))))
        return out + (x if self.shortcut is None else self.shortcut(x))


# shapecheck: input=(2, 3, 32, 32)
class WideResNet(nn.Module):
    def __init__(self, widen=2, n_classes=10):
        super().__init__()
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.stages = nn.Sequential(WideBlock(widths[0], widths[1], 1), WideBlock(widths[1], widths[2], 2),
                                    WideBlock(widths[2], widths[3], 2))
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], n_classes)

    def forward(self, x):
        out = F.relu(self.bn(self.stages(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).view(out.size(0), -1))
