from torch import nn


class Autoencoder(nn.Module):
    def encode(self, x):
        raise NotImplementedError

    def decode(self, z):
        raise NotImplementedError
