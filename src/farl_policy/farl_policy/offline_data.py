"""Offline transitions on the torch side: validated once, sampled in minibatches by every trainer.

BC, the IQL critics, the dynamics ensemble and Uni-O4 all read the same demonstrations; this
module is the one place where a `Transitions` set is checked against the task spec (NaN/inf,
shapes, emptiness) and turned into tensors, so no trainer can skip validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from farl_core.spec import TaskSpec
from farl_core.transitions import DataError, Transitions


@dataclass
class OfflineTensors:
    """N transitions as float32 tensors; `terminated` is 0/1, `start_obs` the episodes' first states."""

    obs: torch.Tensor         # [N, obs_dim]
    act: torch.Tensor         # [N, act_dim]
    rew: torch.Tensor         # [N]
    next_obs: torch.Tensor    # [N, obs_dim]
    terminated: torch.Tensor  # [N] float 0/1
    start_obs: torch.Tensor   # [episodes, obs_dim]

    @classmethod
    def from_transitions(cls, data: Transitions, spec: TaskSpec, source: str) -> OfflineTensors:
        """Validate `data` against `spec` (raises on NaN/inf or bad shapes) and convert it."""
        if len(data) == 0:
            raise DataError(f"{source} holds no transitions (record or load some demonstrations first)")
        data = data.validate(spec, source)
        starts = [s.start for s in data.episode_slices()]
        return cls(obs=torch.as_tensor(data.obs), act=torch.as_tensor(data.act),
                   rew=torch.as_tensor(data.rew), next_obs=torch.as_tensor(data.next_obs),
                   terminated=torch.as_tensor(np.asarray(data.terminated, dtype=np.float32)),
                   start_obs=torch.as_tensor(data.obs[starts]))

    def __len__(self) -> int:
        return len(self.obs)

    def sample(self, batch_size: int, generator: torch.Generator,
               pool: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """A uniform minibatch (with replacement) of rows, drawn from `pool` when one is given."""
        if pool is None:
            index = torch.randint(len(self), (batch_size,), generator=generator)
        else:
            index = pool[torch.randint(len(pool), (batch_size,), generator=generator)]
        return self.rows(index)

    def rows(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The transitions at `index`, as the minibatch dictionary every trainer reads."""
        return {"obs": self.obs[index], "act": self.act[index], "rew": self.rew[index],
                "next_obs": self.next_obs[index], "terminated": self.terminated[index]}


def failure_costs(data: Transitions, source: str) -> torch.Tensor:
    """The per-step costs of `data` as float32 [N]; a DataError when none is a failure (cost 1), since a
    critic of failure risk cannot learn what a failure is from such data."""
    cost = torch.as_tensor(data.cost, dtype=torch.float32)
    if not bool((cost > 0.5).any()):
        raise DataError(f"{source} holds no failure (cost = 1) step, so the critic cannot learn what a failure is "
                        "(add failure demonstrations)")
    return cost


def unit_action(spec: TaskSpec, act: torch.Tensor) -> torch.Tensor:
    """Action mapped from the spec's box to [-1, 1], so a model's inputs have unit scale whatever the units."""
    low = torch.tensor(spec.action_low, dtype=torch.float32)
    high = torch.tensor(spec.action_high, dtype=torch.float32)
    return (act - (high + low) / 2) / ((high - low) / 2)


def clip_action(spec: TaskSpec, act: torch.Tensor) -> torch.Tensor:
    """Action clipped to the spec's box, as the environment and the bridge apply it."""
    low = torch.tensor(spec.action_low, dtype=torch.float32)
    high = torch.tensor(spec.action_high, dtype=torch.float32)
    return torch.maximum(torch.minimum(act, high), low)
