"""Multi-head attention pooling with a learned query over a set of feature vectors."""
import torch
import torch.nn as nn


# shapecheck: input=(3, 11, 24)
class AttentionPool(nn.Module):
    def __init__(self, dim=24, heads=4, n_classes=5):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, items):
        query = self.query.expand(items.size(0), -1, -1)
        pooled, _ = self.attention(query, items, items)
        return self.head(self.norm(pooled.squeeze(1)))
