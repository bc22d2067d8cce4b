import torch

from model import GPT, GPTConfig

checkpoint = torch.load("ckpt.pt", map_location="cpu")
gptconf = GPTConfig(**checkpoint["model_args"])
model = GPT(gptconf)
