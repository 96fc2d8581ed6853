"""Behaviour cloning of an ensemble of Gaussian policies: the start of Uni-O4 (paper III.A).

Uni-O4 clones the demonstrations into several policies that differ only in initialisation and
minibatch order (optionally bootstrap resamples); their spread gives the offline improvement
step several behaviour policies pi_k to start from, and the best of them by offline evaluation
is kept.  All members share one observation normaliser fitted on the demonstrations, frozen
from then on (online PPO must see inputs on the pre-training scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from farl_core.config import param
from farl_core.metrics import MetricLog
from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_policy.gaussian import GaussianPolicy, PolicyConfig
from farl_policy.layers import Normalizer
from farl_policy.offline_data import OfflineTensors


@dataclass(frozen=True)
class BCConfig:
    """BC ensemble settings; defaults from Uni-O4's main.py (4 policies, Adam 1e-4, batch 512)."""

    ensemble_size: int = param(4, ge=1)       # Uni-O4 `--num_policies 4`
    steps: int = param(20_000, ge=1)          # Uni-O4 runs 4e5 on D4RL; demos of a few dozen episodes need far fewer
    batch_size: int = param(512, ge=1)        # Uni-O4 `--bc_batch_size 512`
    lr: float = param(1e-4, gt=0.0)           # Uni-O4 `--bc_lr 1e-4`
    weight_decay: float = param(0.0, ge=0.0)  # Uni-O4 uses plain Adam; AdamW decay helps on tiny demo sets
    bootstrap: bool = False                   # resample the data per member (a bagging ensemble)


def behaviour_cloning_loss(policy: GaussianPolicy, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood -E[log pi(a|s)] of the demonstrated actions."""
    return -policy.log_prob(obs, act).mean()


def train_bc_ensemble(data: Transitions, spec: TaskSpec, policy_config: PolicyConfig | None = None,
                      bc_config: BCConfig = BCConfig(), seed: int = 0,
                      progress: bool = False, log: MetricLog | None = None) -> list[GaussianPolicy]:
    """Clone `data` (validated against `spec`) into `bc_config.ensemble_size` Gaussian policies."""
    policy_config = policy_config or PolicyConfig()
    tensors = OfflineTensors.from_transitions(data, spec, "behaviour-cloning data")
    statistics = Normalizer(spec.obs_dim)
    statistics.fit(tensors.obs)
    members = []
    for k in range(bc_config.ensemble_size):
        member_seed = seed * 1_000 + k
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(member_seed)
            policy = GaussianPolicy(spec, policy_config)
        policy.normalizer.load_state_dict(statistics.state_dict())
        _clone(policy, tensors, bc_config, member_seed, progress, f"BC member {k + 1}/{bc_config.ensemble_size}",
               log, f"bc/member{k}")
        members.append(policy.eval())
    return members


def _clone(policy: GaussianPolicy, tensors: OfflineTensors, config: BCConfig, seed: int, progress: bool,
           desc: str, log: MetricLog | None, stage: str) -> None:
    """Maximise the data log-likelihood of one member with its own minibatch stream."""
    generator = torch.Generator().manual_seed(seed)
    pool = torch.randint(len(tensors), (len(tensors),), generator=generator) if config.bootstrap else None
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    policy.train()
    for step in tqdm(range(config.steps), desc=desc, disable=not progress):
        batch = tensors.sample(config.batch_size, generator, pool)
        loss = behaviour_cloning_loss(policy, batch["obs"], batch["act"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if log is not None:
            log(stage, step, {"nll": loss.item()})
