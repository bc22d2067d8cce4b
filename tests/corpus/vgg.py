"""VGG built from a configuration list, with batch norm."""
import torch.nn as nn

CONFIG = [16, 16, "M", 32, 32, "M", 64, 64, 64, "M"]


def make_layers(config, in_channels=3):
    layers = []
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_channels, item, 3, padding=1), nn.BatchNorm2d(item), nn.ReLU(inplace=True)]
            in_channels = item
    return nn.Sequential(*layers)


# shapecheck: input=(2, 3, 32, 32)
class VGG(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.features = make_layers(CONFIG)
        self.classifier = nn.Linear(64 * 4 * 4, n_classes)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))
