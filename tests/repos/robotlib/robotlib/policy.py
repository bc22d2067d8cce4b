"""An action head on a backbone, tried with and without its advantage embedding; its blocks
are dropped at random during training, as in layer-drop regularisation."""
from random import randrange

import torch
import torch.nn as nn


def drop_blocks(blocks, prob):
    if prob == 0:
        return list(blocks)
    to_drop = torch.zeros(len(blocks)).uniform_(0., 1.) < prob
    if all(to_drop):
        to_drop[randrange(len(blocks))] = False
    return [block for block, drop in zip(blocks, to_drop) if not drop]


class Policy(nn.Module):
    def __init__(self, backbone, dim, depth, dim_action, num_bins=0, block_drop=0.):
        super().__init__()
        self.backbone = backbone
        self.blocks = nn.ModuleList([nn.Linear(dim, dim) for _ in range(depth)])
        self.block_drop = block_drop
        self.bins = nn.Embedding(num_bins, dim) if num_bins else None
        self.to_action = nn.Linear(dim, dim_action)

    def forward(self, img, tasks=None, advantages=None, extra=None, return_tokens=False):
        tokens = self.backbone(img)
        if advantages is not None:
            tokens = tokens + self.bins(advantages)[:, None]
        if extra is not None:
            tokens = tokens + extra[:, None]
        for block in drop_blocks(self.blocks, self.block_drop):
            tokens = tokens + block(tokens)
        actions = self.to_action(tokens.mean(dim=1))
        return (actions, tokens) if return_tokens else actions


if __name__ == "__main__":
    from robotlib.backbone import Backbone

    backbone = Backbone(image_size=32, patch=8, dim=24)
    for num_bins in (0, 4):
        policy = Policy(backbone, dim=24, depth=6, dim_action=7, num_bins=num_bins, block_drop=0.3)
        images = torch.randn(2, 3, 32, 32)
        extra = torch.randn(2, 24)
        actions = policy(images, extra=extra, return_tokens=False)
        assert actions.shape == (2, 7)
