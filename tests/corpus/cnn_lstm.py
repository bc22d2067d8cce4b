"""A CNN applied to every frame of a clip, then an LSTM over the frames."""
import torch.nn as nn


# shapecheck: input=(2, 6, 3, 32, 32)
class CNNLSTM(nn.Module):
    def __init__(self, hidden=32, n_classes=4):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4))
        self.lstm = nn.LSTM(16 * 4 * 4, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, n_classes)

    def forward(self, clips):
        b, t, c, h, w = clips.shape
        frames = self.cnn(clips.view(b * t, c, h, w))
        out, _ = self.lstm(frames.view(b, t, -1))
        return self.fc(out[:, -1])
