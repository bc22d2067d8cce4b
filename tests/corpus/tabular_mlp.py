"""A tabular MLP with batch norm, dropout and an embedding for one categorical column."""
import torch
import torch.nn as nn


# shapecheck: input=((8, 10), (8, "int64"))
class TabularNet(nn.Module):
    def __init__(self, numeric=10, categories=7, embed=4, hidden=32):
        super().__init__()
        self.embed = nn.Embedding(categories, embed)
        self.net = nn.Sequential(nn.Linear(numeric + embed, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.1),
                                 nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, numeric, category):
        return self.net(torch.cat([numeric, self.embed(category)], dim=1)).squeeze(-1)
