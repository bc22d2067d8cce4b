import argparse

import torch

from unet import UNet


def get_args():
    parser = argparse.ArgumentParser(description="Train the UNet on images and target masks")
    parser.add_argument("--epochs", "-e", type=int, default=5)
    parser.add_argument("--classes", "-c", type=int, default=2, help="Number of classes")
    parser.add_argument("--bilinear", action="store_true", default=False)
    parser.add_argument("--channels", type=int, default="3")
    return parser.parse_args()


def train_model(model, device, epochs):
    for epoch in range(epochs):
        pass


if __name__ == "__main__":
    args = get_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = UNet(n_channels=args.channels, n_classes=args.classes, bilinear=args.bilinear)
    model = model.to(device)
    train_model(model, device, args.epochs)
