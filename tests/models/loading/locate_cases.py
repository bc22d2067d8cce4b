"""Layers built in the ways people write them, for engine.locate."""
from collections import OrderedDict

import torch
import torch.nn as nn

CFG = [8, "M", 16]


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1)


def make_layers(cfg):
    layers = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
            layers += [conv2d, nn.ReLU(inplace=True)]
            in_channels = v
    return nn.Sequential(*layers)


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.features = nn.Sequential(
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc1 = nn.Linear(
            16 * 5 * 5, 120)
        self.fc2: nn.Linear = nn.Linear(in_features=120, out_features=84)
        self.named = nn.Sequential(OrderedDict([
            ("norm", nn.BatchNorm1d(84)),
            ("act", nn.ReLU()),
        ]))
        self.heads = nn.ModuleList([nn.Linear(84, 10), nn.Linear(84, 2)])
        self.blocks = nn.ModuleList([nn.LayerNorm(84) for _ in range(3)])
        self.add_module("extra", nn.Dropout(0.5))

    def forward(self, x):
        x = self.features(torch.relu(self.conv1(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = self.fc2(self.fc1(x))
        a, b = self.heads[0](x), self.heads[1](x)
        return torch.cat([a, b], dim=1)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class TinyResNet(nn.Module):
    def __init__(self, block, layers):
        super().__init__()
        self.inplanes = 8
        self.layer1 = self._make_layer(block, 8, layers[0])
        self.vgg = make_layers(CFG)

    def _make_layer(self, block, planes, blocks):
        layers = [block(self.inplanes, planes, 2)]
        for _ in range(1, blocks):
            layers.append(block(planes, planes))
        return nn.Sequential(*layers)


model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(),
                      nn.Linear(8, 2)).to("cpu")
resnet = TinyResNet(BasicBlock, [3])
