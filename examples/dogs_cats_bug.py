"""A cats-vs-dogs classifier on 3x256x256 images whose first Linear was sized for a 5x5 map.

Three conv+pool stages take 256 to 28, so the flattened size is 16x28x28 = 12544, not 400.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

BATCH_SIZE = 32


# shapecheck: input=(32, 3, 256, 256)
class CatDogNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.conv3 = nn.Conv2d(16, 16, 5)
        self.fc1 = nn.Linear(5 * 5 * 16, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 2)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.pool(F.relu(self.conv3(x)))
        x = x.view(x.size(0), 5 * 5 * 16)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


if __name__ == "__main__":
    loader = DataLoader(torch.load("train_images.pt"), batch_size=BATCH_SIZE)
    model = CatDogNet()
    for images, labels in loader:
        model(images)
