"""Models whose example inputs are written in the script part, which must never run."""
import torch
import torch.nn as nn
from torchinfo import summary as info_summary
from torchsummary import summary

BATCH = 16
SHAPE = (3, 32, 32)


class Direct(nn.Module):
    def forward(self, x):
        return x


class ThroughVariable(nn.Module):
    def forward(self, x):
        return x


class Inline(nn.Module):
    def forward(self, x):
        return x


class Tokens(nn.Module):
    def forward(self, ids, mask):
        return ids


class Summarised(nn.Module):
    def forward(self, x):
        return x


class Informed(nn.Module):
    def forward(self, x):
        return x


class Unused(nn.Module):
    def forward(self, x):
        return x


model = nn.Sequential(nn.Linear(10, 4))


def smoke_test():
    net = Direct().to("cpu")
    out = net(torch.randn(4, 1, 32, 32))
    return out


if __name__ == "__main__":
    raise SystemExit("never run")
    x = torch.rand(BATCH // 2, *SHAPE).to("cpu")
    y = ThroughVariable()(x)
    print(Inline()(torch.zeros((2, 3, 64, 64))).shape)
    ids = torch.randint(0, 100, (4, 20))
    tokens = Tokens()
    tokens.forward(ids, torch.ones(4, 20, dtype=torch.bool))
    summary(Summarised(), (1, 28, 28))
    info_summary(Informed(), input_size=(BATCH, 1, 28, 28))
    model(torch.randn(BATCH, 10))
