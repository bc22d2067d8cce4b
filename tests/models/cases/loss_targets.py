import torch.nn as nn
import torch.nn.functional as F


# shapecheck: input=((8, 10), (8,))
class Unreduced(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 1)
        self.loss = nn.MSELoss(reduction="none")

    def forward(self, x, y):
        return self.loss(self.fc(x), y).mean()  # expect: SC402


# shapecheck: input=((8, 10), (8,))
class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x, y):
        return F.smooth_l1_loss(self.fc(x), y, reduction="sum")  # expect: SC402


# shapecheck: input=((8, 10), (8,))
class Poisson(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 1)
        self.loss = nn.PoissonNLLLoss()

    def forward(self, x, y):
        return self.loss(self.fc(x), target=y)  # expect: SC402


# shapecheck: input=((8, 10), (8, 1))
class Divergence(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x, y):
        return F.kl_div(self.fc(x).squeeze(1), y, reduction="batchmean")  # expect: SC402
