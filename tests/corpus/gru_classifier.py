"""A bidirectional GRU text classifier: the last hidden states of both directions."""
import torch
import torch.nn as nn


# shapecheck: input=((3, 20, "int64"),)
class GRUClassifier(nn.Module):
    def __init__(self, vocab=50, dim=16, hidden=24, n_classes=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.gru = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, n_classes)

    def forward(self, tokens):
        _, h = self.gru(self.embed(tokens))
        return self.head(torch.cat([h[-2], h[-1]], dim=1))
