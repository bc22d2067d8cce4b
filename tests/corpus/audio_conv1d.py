"""A 1-D convolutional audio classifier on raw waveforms."""
import torch.nn as nn


# shapecheck: input=(2, 1, 8000)
class AudioNet(nn.Module):
    def __init__(self, n_classes=12):
        super().__init__()
        layers, c_in = [], 1
        for c_out, kernel, stride in ((16, 80, 4), (16, 3, 1), (32, 3, 1), (64, 3, 1)):
            layers += [nn.Conv1d(c_in, c_out, kernel, stride), nn.BatchNorm1d(c_out), nn.ReLU(), nn.MaxPool1d(4)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x):
        x = self.features(x)
        x = nn.functional.avg_pool1d(x, x.shape[-1])
        return self.fc(x.permute(0, 2, 1)).squeeze(1)
