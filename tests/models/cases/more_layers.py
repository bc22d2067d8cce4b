import torch.nn as nn


# shapecheck: input=(4, 12)
class FloatTokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 16)  # expect: SC120
        self.fc = nn.Linear(16, 2)

    def forward(self, tokens):
        return self.fc(self.emb(tokens).mean(1))


# shapecheck: input=(4, 10, 32)
class Attend(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True)  # expect: SC105
        self.fc = nn.Linear(64, 2)

    def forward(self, x):
        out, _ = self.attn(x, x, x)
        return self.fc(out.mean(1))


# shapecheck: input=(4, 3, 16, 16)
class PixelShuffleWrong(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)  # expect: SC501

    def forward(self, x):
        return self.shuffle(self.conv(x))
