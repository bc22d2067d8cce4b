"""AlexNet-style features and classifier, narrowed, on 64x64 images."""
import torch
import torch.nn as nn


# shapecheck: input=(2, 3, 64, 64)
class AlexNet(nn.Module):
    def __init__(self, n_classes=100):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(32, 64, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.Conv2d(64, 96, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(96, 64, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d((3, 3))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(64 * 3 * 3, 256), nn.ReLU(inplace=True),
                                        nn.Linear(256, n_classes))

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))
