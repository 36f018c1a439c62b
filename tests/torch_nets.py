"""Small PyTorch modules for the torch tests, named as `torch:tests.torch_nets:FACTORY`.
Importing this file needs torch; the tests skip before it when torch is absent."""

from __future__ import annotations

import torch
from torch import nn


class SmallConvNet(nn.Module):
    """A convolution, a ReLU and a linear layer: two tuning tasks or so, seconds to tune."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.head = nn.Linear(8 * 8 * 8, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(image))
        return self.head(features.flatten(1))


def small_convnet() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return SmallConvNet(), (torch.randn(1, 3, 8, 8),)


def small_convnet_without_examples() -> nn.Module:
    return SmallConvNet()


def not_a_module() -> str:
    return "a string"
