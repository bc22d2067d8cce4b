import torch
import torch.nn as nn
import torch.nn.functional as F


# shapecheck: input=(4, 3, 64, 64)
class Attention(nn.Module):
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.patch = nn.Conv2d(3, dim, 8, stride=8)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        q = q.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        k = k.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        v = v.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        att = F.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
        out = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(out).mean(1)


# shapecheck: input=(4, 3, 32, 32)
class Regroup(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = self.conv(x)
        n = x.size(0)
        x = x.permute(0, 2, 3, 1).reshape(-1, 8)
        x = self.fc(x)
        return x.reshape(n, 32 * 32, 2).mean(1)


# shapecheck: input=(4, 3, 32, 32)
class Exact(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 5)
        self.fc = nn.Linear(6 * 28 * 28, 10)

    def forward(self, x):
        x = self.conv(x)
        if x.shape[-1] > 8:
            x = x.view(-1, 6 * 28 * 28)
        return self.fc(x)


# shapecheck: input=(4, 12, "int64")
class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.gru = nn.GRU(16, 32, batch_first=True)
        self.fc = nn.Linear(32, 3)

    def forward(self, tokens):
        h, _ = self.gru(self.emb(tokens))
        return self.fc(h[:, -1])


# shapecheck: input=(4, 16, 10)
class KeepBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(20, 3)

    def forward(self, x):
        x = x.reshape(x.size(0), 8, -1)
        return self.fc(x).flatten(1)
