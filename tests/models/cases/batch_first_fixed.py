import torch.nn as nn


# shapecheck: input=(8, 20, 32)
class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(32, 64, batch_first=True)
        self.out = nn.Linear(64, 5)

    def forward(self, x):
        h, _ = self.lstm(x)
        return self.out(h[:, -1])


# shapecheck: input=(4, 10, 16)
class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x = self.encoder(x)
        x, _ = self.attn(x, x, x)
        return self.head(x.mean(1))


# shapecheck: input=(8, 20, 32)
class TimeMajor(nn.Module):
    """Reads N×T×F and turns it time-major itself: nothing to report."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(32, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, x):
        h, _ = self.gru(x.transpose(0, 1))
        return self.out(h[-1])
