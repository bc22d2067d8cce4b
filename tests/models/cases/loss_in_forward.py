import torch.nn as nn
import torch.nn.functional as F


# shapecheck: input=((8, 10), (8,))
class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 1)
        self.loss = nn.MSELoss()

    def forward(self, x, y):
        pred = self.fc(x)
        return self.loss(pred, y)  # expect: SC402


# shapecheck: input=((8, 10), (8, 3, "int64"))
class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 4)

    def forward(self, x, y):
        return F.cross_entropy(self.fc(x), y)  # expect: SC401
