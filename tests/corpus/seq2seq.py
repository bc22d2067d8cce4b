"""A GRU encoder-decoder with teacher forcing: source and target token sequences."""
import torch.nn as nn


# shapecheck: input=((2, 9, "int64"), (2, 7, "int64"))
class Seq2Seq(nn.Module):
    def __init__(self, src_vocab=40, tgt_vocab=30, dim=16, hidden=32):
        super().__init__()
        self.src_embed = nn.Embedding(src_vocab, dim)
        self.tgt_embed = nn.Embedding(tgt_vocab, dim)
        self.encoder = nn.GRU(dim, hidden, batch_first=True)
        self.decoder = nn.GRU(dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, tgt_vocab)

    def forward(self, source, target):
        _, state = self.encoder(self.src_embed(source))
        decoded, _ = self.decoder(self.tgt_embed(target), state)
        return self.out(decoded)
