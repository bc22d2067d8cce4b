import torch.nn as nn


# shapecheck: input=(2, 6, 3, 20, 20)
class ClipClassifier(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(5))
        self.lstm = nn.LSTM(16 * 4 * 4, hidden, batch_first=True)  # expect: SC104
        self.fc = nn.Linear(hidden, 4)

    def forward(self, clips):
        b, t, c, h, w = clips.shape
        frames = self.cnn(clips.view(b * t, c, h, w))
        out, _ = self.lstm(frames.view(b, t, -1))
        return self.fc(out[:, -1])
