"""A Vision Transformer: patch embedding, class token, positions, encoder, head."""
import torch
import torch.nn as nn


# shapecheck: input=(2, 3, 32, 32)
class ViT(nn.Module):
    def __init__(self, image_size=32, patch=8, dim=48, depth=2, heads=4, n_classes=10):
        super().__init__()
        patches = (image_size // patch) ** 2
        self.to_patches = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(torch.zeros(1, patches + 1, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, images):
        x = self.to_patches(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.size(0), -1, -1), x], dim=1) + self.position
        return self.head(self.norm(self.encoder(x))[:, 0])
