"""Small network builders shared by policies, critics and models."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
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


def inference_forward(net: nn.Sequential) -> Callable[[torch.Tensor], torch.Tensor]:
    """`net`'s forward as a plain function over its live weights, for batch-1 inference loops.

    At batch 1 the per-layer `nn.Module.__call__` dispatch and parameter look-ups cost as much as
    the small matmuls themselves, and the shield runs ~30 layers per control step.  The function
    holds detached views of the parameters (shared storage), so in-place updates by an optimiser
    or `load_state_dict` are seen; replacing a parameter tensor (`.to(device)`, assign=True) is
    not, so build it after the model is placed.  No autograd: inference only.
    """
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for layer in net:
        if isinstance(layer, nn.Linear):
            weight = layer.weight.detach()
            bias = None if layer.bias is None else layer.bias.detach()
            steps.append(lambda x, weight=weight, bias=bias: F.linear(x, weight, bias))
        else:
            steps.append(layer.forward)

    def forward(x: torch.Tensor) -> torch.Tensor:
        for step in steps:
            x = step(x)
        return x

    return forward


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


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, rate: float) -> None:
    """Move every parameter of `target` a fraction `rate` towards `online`'s (a slowly tracking copy)."""
    for slow, fast in zip(target.parameters(), online.parameters(), strict=True):
        slow.lerp_(fast, rate)
