"""A user's own model, as a factory deploybench calls (tests: source python)."""

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(images), 1))


def build(num_classes: int = 10, width: int = 16) -> nn.Module:
    return SmallCNN(num_classes, width)


def broken(**options):
    raise RuntimeError("weights server unreachable")


def not_a_module(**options):
    return "a string"
