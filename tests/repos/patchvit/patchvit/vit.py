"""A vision transformer whose first layer is an einops pattern; the image size is stated only
where the model is built (the README), and no example input is given."""
import torch
from einops import repeat
from einops.layers.torch import Rearrange
from torch import nn


class PatchViT(nn.Module):
    def __init__(self, *, image_size, patch_size, num_classes, dim, depth=1, channels=3):
        super().__init__()
        patches = (image_size // patch_size) ** 2
        patch_dim = channels * patch_size * patch_size
        self.to_patch_embedding = nn.Sequential(
            Rearrange("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size),
            nn.LayerNorm(patch_dim),
            nn.Linear(patch_dim, dim),
        )
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, patches + 1, dim))
        layer = nn.TransformerEncoderLayer(dim, nhead=2, dim_feedforward=2 * dim, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, depth)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, img):
        x = self.to_patch_embedding(img)
        cls = repeat(self.cls_token, "1 1 d -> b 1 d", b=x.shape[0])
        x = torch.cat((cls, x), dim=1) + self.pos_embedding
        return self.head(self.transformer(x)[:, 0])
