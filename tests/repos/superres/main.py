import argparse

import torch

from model import SubPixel

parser = argparse.ArgumentParser(description="sub-pixel super-resolution")
parser.add_argument("--upscale", type=int, required=True, help="upscale factor")
parser.add_argument("--batch", type=int, default=64)
parser.add_argument("--cuda", action="store_true")
opt = parser.parse_args()

model = SubPixel(upscale=opt.upscale)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
