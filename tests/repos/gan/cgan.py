"""A conditional GAN whose sizes come from a module-level argparse namespace."""
import argparse

import numpy as np
import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--n_epochs", type=int, default=200)
parser.add_argument("--latent_dim", type=int, default=100)
parser.add_argument("--n_classes", type=int, default=10)
parser.add_argument("--img_size", type=int, default=32)
parser.add_argument("--channels", type=int, default=1)
opt = parser.parse_args()
print(opt)

img_shape = (opt.channels, opt.img_size, opt.img_size)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.label_emb = nn.Embedding(opt.n_classes, opt.n_classes)
        self.model = nn.Sequential(nn.Linear(opt.latent_dim + opt.n_classes, 128), nn.ReLU(),
                                   nn.Linear(128, int(np.prod(img_shape))), nn.Tanh())

    def forward(self, noise, labels):
        gen_input = torch.cat((self.label_emb(labels), noise), -1)
        img = self.model(gen_input)
        return img.view(img.size(0), *img_shape)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(int(np.prod(img_shape)), 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, img):
        return self.model(img.view(img.size(0), -1))


class PairCritic(nn.Module):
    """Scores a pair of images (an input and its translation)."""

    def __init__(self, channels=1):
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, 8, 4, stride=2, padding=1)
        self.head = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, img_A, img_B):
        return self.head(self.conv(torch.cat((img_A, img_B), 1)))


generator = Generator()
discriminator = Discriminator()

critic = PairCritic(channels=opt.channels)
scores = critic(torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32))

for epoch in range(opt.n_epochs):
    z = torch.randn(64, opt.latent_dim)
    gen_labels = torch.randint(0, opt.n_classes, (64,))
    gen_imgs = generator(z, gen_labels)
