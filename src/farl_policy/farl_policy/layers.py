"""Small network builders shared by policies, critics and models."""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """Fully connected network: in -> hidden... -> out, `activation` between layers, linear output."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, width), activation()]
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class Normalizer(nn.Module):
    """Per-dimension standardisation fitted once on offline data and frozen afterwards.

    Frozen online (paper setup via Uni-O4): a policy fine-tuned on hardware must see inputs on
    the scale it was pre-trained on, so statistics are buffers, not parameters, and only `fit`
    changes them.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, data: torch.Tensor) -> None:
        self.mean.copy_(data.mean(0))
        self.std.copy_(data.std(0).clamp_min(self.eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean
