import torch.nn as nn


# shapecheck: input=(2, 4)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc2(x)  # expect: SC503
