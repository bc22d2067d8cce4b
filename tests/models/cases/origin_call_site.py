"""The model is built by a call in the file: the number to change is that call's argument."""
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, channels, width=16):
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width)

    def forward(self, x):
        return self.norm(self.conv(x)).relu()


class Classifier(nn.Module):
    def __init__(self, in_ch, n_classes=10):
        super().__init__()
        self.encoder = Encoder(in_ch)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x):
        return self.fc(self.pool(self.encoder(x)).flatten(1))


# shapecheck: input=(4, 3, 16, 16)
classifier = Classifier(1)  # expect: SC102
