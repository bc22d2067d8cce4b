"""ResNet-50: a 7x7 stem, four stages of bottleneck blocks [3, 4, 6, 3], widths 64..2048, 1000 classes."""
import torch
from torch import nn

STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (inner width, blocks, first stride)
EXPANSION = 4


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand; a projection shortcut when shapes change."""

    def __init__(self, c_in: int, width: int, stride: int = 1):
        super().__init__()
        c_out = width * EXPANSION
        self.reduce = conv_bn(c_in, width, 1)
        self.spatial = conv_bn(width, width, 3, stride)
        self.expand = conv_bn(width, c_out, 1)
        self.shortcut = conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.relu(self.reduce(x))
        y = self.relu(self.spatial(y))
        y = self.expand(y)
        return self.relu(y + self.shortcut(x))


def make_stage(c_in: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck(c_in, width, stride)]
    layers += [Bottleneck(width * EXPANSION, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


# shapecheck: input=(8, 3, 224, 224)
class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 64, 7, 2), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        stages, c_in = [], 64
        for width, blocks, stride in STAGES:
            stages.append(make_stage(c_in, width, blocks, stride))
            c_in = width * EXPANSION
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)
