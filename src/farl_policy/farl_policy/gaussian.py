"""Gaussian MLP policy: bounded mean, learned state-independent log-std, frozen obs normaliser.

The same class serves as task policy and recovery policy, offline (BC, Uni-O4) and online (PPO).
Sampled actions are not squashed: their log-probabilities are exact Gaussian log-probabilities,
which the clipped ratio of paper Eq. 3 needs; the bridge or env clips to the action bounds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal

from farl_core.checkpoint import load_checkpoint, save_checkpoint
from farl_core.config import param
from farl_core.spec import TaskSpec
from farl_policy.layers import Normalizer, mlp


@dataclass(frozen=True)
class PolicyConfig:
    """Policy network sizes. Defaults: Uni-O4's MuJoCo actor (2 x 256, tanh)."""

    hidden: tuple[int, ...] = (256, 256)
    init_log_std: float = param(-0.5, ge=-5.0, le=2.0)
    min_log_std: float = -5.0
    max_log_std: float = 1.0


class GaussianPolicy(nn.Module):
    """pi(a|s) = N(mean(s), diag(exp(log_std))^2), mean bounded to the spec's action box."""

    def __init__(self, spec: TaskSpec, config: PolicyConfig = PolicyConfig()) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.normalizer = Normalizer(spec.obs_dim)
        self.body = mlp(spec.obs_dim, config.hidden, spec.act_dim)
        self.log_std = nn.Parameter(torch.full((spec.act_dim,), float(config.init_log_std)))
        low = torch.tensor(spec.action_low, dtype=torch.float32)
        high = torch.tensor(spec.action_high, dtype=torch.float32)
        self.register_buffer("action_centre", (high + low) / 2)
        self.register_buffer("action_scale", (high - low) / 2)

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action: the bounded mean of pi(.|s)."""
        return self.action_centre + self.action_scale * torch.tanh(self.body(self.normalizer(obs)))

    def forward(self, obs: torch.Tensor) -> Normal:
        """The action distribution pi(.|s) for a batch of raw observations."""
        log_std = self.log_std.clamp(self.config.min_log_std, self.config.max_log_std)
        return Normal(self.mean(obs), log_std.exp().expand(obs.shape[:-1] + log_std.shape))

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """log pi(a|s), summed over action dimensions."""
        return self(obs).log_prob(act).sum(-1)

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs).entropy().sum(-1)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False,
            generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Action and its log-prob for one observation or a batch; NaN/inf input is a SpecError."""
        obs_t = torch.as_tensor(self.spec.check_observation(obs))
        dist = self(obs_t)
        if deterministic:
            action = dist.mean
        else:
            action = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=generator)
        return action.numpy(), dist.log_prob(action).sum(-1).numpy()

    def save(self, path: str | Path, kind: str, extra: dict | None = None, overwrite: bool = False) -> Path:
        return save_checkpoint(path, kind=kind, tensors=dict(self.state_dict()), spec=self.spec,
                               config={"policy": asdict(self.config)}, extra=extra, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, kind: str, spec: TaskSpec | None = None) -> GaussianPolicy:
        """Load a policy checkpoint; refuse it if it was trained for a different task spec."""
        checkpoint = load_checkpoint(path, kind=kind, spec=spec)
        raw = checkpoint.config["policy"]
        config = PolicyConfig(**{**raw, "hidden": tuple(raw["hidden"])})
        policy = cls(checkpoint.spec, config)
        policy.load_state_dict(checkpoint.tensors)
        return policy
