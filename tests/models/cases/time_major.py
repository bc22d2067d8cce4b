import torch.nn as nn


# shapecheck: input=(35, 20, 32)
class LastStep(nn.Module):
    """35 steps of a batch of 20 (the output has 20 rows), or a batch of 35 that lost its rows."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(32, 64)  # expect: SC207
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[-1])


# shapecheck: input=((35, 20, "int64"),)
class WordModel(nn.Module):
    """One output per step and sample: dim 0 may be the batch or the sequence."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.lstm = nn.LSTM(32, 64)  # expect: SC207
        self.fc = nn.Linear(64, 100)

    def forward(self, x):
        out, _ = self.lstm(self.embed(x))
        return self.fc(out)


# shapecheck: input=((8, 20, "int64"),)
class MixedLayout(nn.Module):
    """The attention reads batch first, so the stated input is: the GRU runs along the batch."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.attn = nn.MultiheadAttention(32, 2, batch_first=True)
        self.gru = nn.GRU(32, 32)  # expect: SC204
        self.fc = nn.Linear(32, 100)

    def forward(self, x):
        x = self.embed(x)
        out, _ = self.gru(self.attn(x, x, x)[0])
        return self.fc(out)


# shapecheck: input=((8, 10, "int64"), (8, 14, 32))
class PairedInputs(nn.Module):
    """Both inputs have 8 in dim 0 and differ in dim 1: 8 is the batch, the GRU runs along it."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.gru = nn.GRU(32, 32)  # expect: SC204
        self.fc = nn.Linear(32, 32)

    def forward(self, tokens, memory):
        out, _ = self.gru(self.embed(tokens))
        return self.fc(out) + memory.mean(1, keepdim=True)
