"""Models whose constructors and forward passes reach outside: every attempt must be refused.

MARKER and PORT are replaced by the test before the file is checked.
"""
import os
import pathlib
import socket
import subprocess

import torch.nn as nn

MARKER = "/nonexistent/marker"
PORT = 9


class Writes(nn.Module):
    def __init__(self):
        super().__init__()
        with open(MARKER + ".open", "w") as handle:
            handle.write("written")
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Touches(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        pathlib.Path(MARKER + ".touch").touch()
        return self.fc(x)


class Connects(nn.Module):
    def __init__(self):
        super().__init__()
        socket.create_connection(("127.0.0.1", PORT), timeout=2)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Shell(nn.Module):
    def __init__(self):
        super().__init__()
        os.system("touch " + MARKER + ".system")
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Spawns(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        subprocess.run(["touch", MARKER + ".subprocess"])
        return self.fc(x)


class Swallows(nn.Module):
    def __init__(self):
        super().__init__()
        try:
            os.remove(MARKER + ".keep")
        except BaseException:
            pass
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Wrong(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(x)
