"""Small models for input inference: token, recurrent, attention and fully connected inputs."""
import torch
import torch.nn as nn


class FixedTokens(nn.Module):
    """Embedding, then a Linear over all 20 positions: only sequences of 20 tokens fit."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 8)
        self.head = nn.Linear(20 * 8, 3)

    def forward(self, tokens):
        return self.head(self.embed(tokens).flatten(1))


class Recurrent(nn.Module):
    """A batch-first LSTM read at its last step: any sequence length."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(12, 16, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class TimeMajorGRU(nn.Module):
    """A GRU on T×N×F input whose output is pooled over time with a window of 4."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 10)
        self.pool = nn.AvgPool1d(4)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.pool(out.permute(1, 2, 0))


class Attention(nn.Module):
    """A batch-first transformer encoder over 32-wide tokens: any length."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        return self.head(self.encoder(x).mean(1))


class Mlp(nn.Module):
    """Fully connected from the first layer: 784 features."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class Signal(nn.Module):
    """Conv1d with a stride, then a Linear over 8 positions: lengths 17 and 18 fit."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, stride=2)
        self.fc = nn.Linear(4 * 8, 1)

    def forward(self, x):
        return self.fc(self.conv(x).view(-1, 4 * 8))
