"""A small C3D-style video network on 8-frame clips."""
import torch.nn as nn


# shapecheck: input=(2, 3, 8, 32, 32)
class C3D(nn.Module):
    def __init__(self, n_classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool3d((1, 2, 2)),
            nn.Conv3d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
            nn.Conv3d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2))
        self.fc = nn.Linear(32 * 2 * 4 * 4, n_classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(x.reshape(x.size(0), -1))
