"""A GAN whose generator takes noise, one-hot labels and a latent code, concatenated before its
first layer; their sizes are command-line options."""
import argparse

import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--n_epochs", type=int, default=200)
parser.add_argument("--latent_dim", type=int, default=12)
parser.add_argument("--code_dim", type=int, default=2)
parser.add_argument("--n_classes", type=int, default=5)
parser.add_argument("--img_size", type=int, default=16)
opt = parser.parse_args()


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        input_dim = opt.latent_dim + opt.n_classes + opt.code_dim
        self.init_size = opt.img_size // 4
        self.l1 = nn.Linear(input_dim, 8 * self.init_size ** 2)
        self.conv = nn.Sequential(nn.Upsample(scale_factor=4), nn.Conv2d(8, 1, 3, padding=1))

    def forward(self, noise, labels, code):
        gen_input = torch.cat((noise, labels, code), -1)
        out = self.l1(gen_input).view(noise.shape[0], 8, self.init_size, self.init_size)
        return self.conv(out)


generator = Generator()
