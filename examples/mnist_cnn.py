"""A small MNIST classifier: two 3x3 convolutions with max pooling and one linear layer.

`shapecheck verify examples/mnist_cnn.py --train 10 --lr 0.05` trains it with torch's
convolutions and with each from-scratch one on a seeded random 28x28 batch and compares the
learning.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


# shapecheck: input=(32, 1, 28, 28)
class MnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))
