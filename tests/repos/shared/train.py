import argparse

from models import Encoder, Residual

parser = argparse.ArgumentParser()
parser.add_argument("--dim", type=int, default=8)
parser.add_argument("--downsample", type=int, default=3)
opt = parser.parse_args()

shared_dim = opt.dim * 2 ** opt.downsample
shared = Residual(features=shared_dim)
first = Encoder(dim=opt.dim, downsample=opt.downsample, shared_block=shared)
second = Encoder(dim=opt.dim, downsample=opt.downsample, shared_block=shared)
