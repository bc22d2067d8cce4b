"""A DCGAN script: a required `--dataset` chooses the number of image channels."""
import argparse

import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--dataset", required=True, help="cifar10 | mnist | fake")
parser.add_argument("--dataroot", required=False)
parser.add_argument("--nz", type=int, default=16)
parser.add_argument("--ngf", type=int, default=8)
parser.add_argument("--ngpu", type=int, default=1)
opt = parser.parse_args()

if opt.dataroot is None and opt.dataset != "fake":
    raise ValueError("--dataroot is needed")
if opt.dataset in ["cifar10", "fake"]:
    nc = 3
elif opt.dataset == "mnist":
    nc = 1

ngpu = int(opt.ngpu)
nz = int(opt.nz)
ngf = int(opt.ngf)


class Generator(nn.Module):
    def __init__(self, ngpu):
        super().__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 4, 1, 0, bias=False), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self, ngpu):
        super().__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            nn.Conv2d(nc, ngf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ngf, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, input):
        return self.main(input).view(-1, 1).squeeze(1)


netG = Generator(ngpu)
netD = Discriminator(ngpu)
