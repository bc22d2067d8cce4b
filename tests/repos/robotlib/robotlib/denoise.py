"""A denoiser taking the time by name and optional conditioning, and a trainer that wraps it
and passes the classes through to it."""
import torch
import torch.nn as nn


class Denoiser(nn.Module):
    def __init__(self, dim=16, num_classes=10):
        super().__init__()
        self.init_conv = nn.Conv2d(3, dim, 3, padding=1)
        self.time_mlp = nn.Linear(1, dim)
        self.classes = nn.Embedding(num_classes, dim)
        self.out = nn.Conv2d(dim, 3, 1)

    def forward(self, x, time, self_cond=None, class_labels=None):
        h = self.init_conv(x if self_cond is None else x + self_cond)
        h = h + self.time_mlp(time[:, None])[:, :, None, None]
        if class_labels is not None:
            h = h + self.classes(class_labels)[:, :, None, None]
        return self.out(h)


class Trainer(nn.Module):
    def __init__(self, model, image_size):
        super().__init__()
        self.model = model
        self.image_size = image_size

    def forward(self, img, *args, **kwargs):
        assert img.shape[-1] == self.image_size
        time = torch.rand(img.shape[0], device=img.device)
        return (self.model(img, time, **kwargs) - img).pow(2).mean()


if __name__ == "__main__":
    denoiser = Denoiser(dim=16, num_classes=10)
    images = torch.randn(4, 3, 24, 24)
    out = denoiser(images, time=torch.ones(4,), class_labels=torch.randint(0, 10, (4,)))
    trainer = Trainer(denoiser, image_size=24).cpu()
    loss = trainer(images.cpu(), class_labels=torch.randint(0, 10, (4,)).cpu())
