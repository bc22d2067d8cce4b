import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, d_in, hidden, n_out=3):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.fc2(self.fc1(x))


# shapecheck: input=(8, 20)
model = MLP(24, 64)  # expect: SC101
