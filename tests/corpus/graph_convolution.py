"""A two-layer graph convolution on node features and a normalised adjacency matrix."""
import torch
import torch.nn as nn


# shapecheck: input=((2, 9, 6), (2, 9, 9))
class GCN(nn.Module):
    def __init__(self, features=6, hidden=16, n_classes=3):
        super().__init__()
        self.w1 = nn.Linear(features, hidden)
        self.w2 = nn.Linear(hidden, n_classes)

    def forward(self, nodes, adjacency):
        h = torch.relu(torch.bmm(adjacency, self.w1(nodes)))
        return torch.bmm(adjacency, self.w2(h))
