"""Architectures that run in real torch: none of them may get a finding."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# shapecheck: input=(4, 12, 32)
class TinyTransformer(nn.Module):
    def __init__(self, d_model=32, heads=4, classes=5):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)
        self.pos = nn.Parameter(torch.zeros(1, 64, d_model))
        self.head = nn.Linear(d_model, classes)

    def forward(self, x):
        x = x + self.pos[:, : x.size(1)]
        return self.head(self.encoder(x).mean(dim=1))


# shapecheck: input=(4, 7, 20)
class LSTMClassifier(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.hidden = hidden
        self.lstm = nn.LSTM(20, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, 3)

    def forward(self, x):
        h0 = torch.zeros(4, x.size(0), self.hidden, device=x.device)
        c0 = torch.zeros_like(h0)
        out, _ = self.lstm(x, (h0, c0))
        return self.fc(out[:, -1, :])


# shapecheck: input=(4, 1, 28, 28)
class VAE(nn.Module):
    def __init__(self, latent=8):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU())
        self.mu = nn.Linear(128, latent)
        self.logvar = nn.Linear(128, latent)
        self.dec = nn.Sequential(nn.Linear(latent, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28)))

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar


# shapecheck: input=(4, 16)
class Generator(nn.Module):
    def __init__(self, nz=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, 32, 4, 1, 0, bias=False), nn.BatchNorm2d(32), nn.ReLU(True),
            nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(True),
            nn.ConvTranspose2d(16, 3, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.net(z.view(z.size(0), -1, 1, 1))


# shapecheck: input=(2, 3, 64, 64)
class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.d1 = nn.Conv2d(3, 8, 3, padding=1)
        self.d2 = nn.Conv2d(8, 16, 3, padding=1)
        self.mid = nn.Conv2d(16, 16, 3, padding=1)
        self.u2 = nn.Conv2d(32, 8, 3, padding=1)
        self.u1 = nn.Conv2d(16, 4, 3, padding=1)

    def forward(self, x):
        a = F.relu(self.d1(x))
        b = F.relu(self.d2(F.max_pool2d(a, 2)))
        m = F.relu(self.mid(F.max_pool2d(b, 2)))
        m = F.interpolate(m, scale_factor=2, mode="nearest")
        u = F.relu(self.u2(torch.cat([m, b], dim=1)))
        u = F.interpolate(u, size=a.shape[-2:], mode="bilinear", align_corners=False)
        return self.u1(torch.cat([u, a], dim=1))


# shapecheck: input=(4, 10)
class Mixture(nn.Module):
    def __init__(self, experts=3):
        super().__init__()
        self.experts = nn.ModuleList([nn.Linear(10, 6) for _ in range(experts)])
        self.gate = nn.Linear(10, experts)

    def forward(self, x):
        outs = torch.stack([e(x) for e in self.experts], dim=1)
        weights = F.softmax(self.gate(x), dim=-1)
        mixed = torch.einsum("be,bed->bd", weights, outs)
        first, second = mixed.chunk(2, dim=-1)
        return first * torch.sigmoid(second) / math.sqrt(first.size(-1))


# shapecheck: input=(4, 3, 32, 32)
class GroupNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.gn = nn.GroupNorm(8, 32)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        x = self.pool(F.gelu(self.gn(self.conv(x))))
        return self.fc(x.reshape(x.shape[0], -1))
