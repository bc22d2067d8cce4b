import torch.nn as nn
import torch.nn.functional as F


# shapecheck: input=((8, 10), (8, "int64"))
class ModuleLossByName(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 4)
        self.criterion = nn.CrossEntropyLoss()

    def forward(self, x, y):
        return self.criterion(input=self.fc(x), target=y)


# shapecheck: input=((8, 10), (8, "int64"))
class FunctionalTargetByName(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 4)

    def forward(self, x, y):
        return F.cross_entropy(self.fc(x), target=y, label_smoothing=0.1)


# shapecheck: input=((8, 10), (8, 3, "int64"))
class WrongTargetByName(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 4)

    def forward(self, x, y):
        return F.cross_entropy(self.fc(x), target=y)  # expect: SC401


# shapecheck: input=((8, 10), (8,))
class BroadcastByName(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 1)
        self.loss = nn.MSELoss()

    def forward(self, x, y):
        return self.loss(input=self.fc(x), target=y)  # expect: SC402


# shapecheck: input=((8, 10), (8, 1))
class BothByName(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x, y):
        return F.mse_loss(target=y, input=self.fc(x))
