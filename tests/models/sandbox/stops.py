"""Models that exit, crash or hang; the last one has a real shape bug that must still be found."""
import ctypes
import os
import sys

import torch.nn as nn


class CallsExit(nn.Identity):  # a forward to call, were it ever built
    def __init__(self):
        super().__init__()
        sys.exit(0)


class HardExit(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        os._exit(3)


class Segfault(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        ctypes.string_at(0)
        return self.fc(x)


class HangsInInit(nn.Identity):
    def __init__(self):
        super().__init__()
        while True:
            pass


class HangsInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        total = 0
        while True:
            total += 1


class Wrong(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(x)
