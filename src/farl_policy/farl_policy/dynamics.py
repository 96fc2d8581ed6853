"""Learned dynamics ensemble for Uni-O4's offline policy evaluation (OPE).

Uni-O4 only lets a behaviour policy pi_k be replaced by its improved copy when a model-based
estimate of the return says the copy is better, so an improvement that the critics merely
hallucinate is not adopted.  The model here predicts, from (s, a), the normalised state change,
the reward and a termination logit; an ensemble (different initialisations and minibatches)
samples one member per step so the estimate reflects the model's own uncertainty.

Defaults follow the transition model Uni-O4 takes from MOBILE (`configs/gym/default.py` in
Lei-Kun/Uni-O4): 5 elite members, 4 x 200 hidden units, Adam 1e-3 with weight decay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from farl_core.config import param
from farl_core.metrics import MetricLog
from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_policy.gaussian import GaussianPolicy
from farl_policy.layers import Normalizer
from farl_policy.offline_data import OfflineTensors, clip_action, unit_action


@dataclass(frozen=True)
class DynamicsConfig:
    """Dynamics-ensemble sizes and training settings (Uni-O4 / MOBILE defaults)."""

    ensemble_size: int = param(5, ge=1)              # Uni-O4 `n_elites 5`
    hidden: tuple[int, ...] = param((200, 200, 200, 200), ge=1)  # Uni-O4 `dynamics_hidden_dims`
    lr: float = param(1e-3, gt=0.0)                  # Uni-O4 `dynamics_lr`
    weight_decay: float = param(5e-5, ge=0.0)        # middle of Uni-O4's per-layer 2.5e-5 .. 1e-4
    batch_size: int = param(256, ge=1)
    steps: int = param(10_000, ge=1)


class EnsembleLinear(nn.Module):
    """E independent affine layers applied in one batched matmul: [E, B, in] -> [E, B, out]."""

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default initialisation range, per member
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x W_e + b_e for every member e."""
        return torch.baddbmm(self.bias, x, self.weight)


class DynamicsEnsemble(nn.Module):
    """p(s', r, done | s, a) as E deterministic MLPs over normalised inputs and targets."""

    def __init__(self, spec: TaskSpec, config: DynamicsConfig = DynamicsConfig()) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.obs_normalizer = Normalizer(spec.obs_dim)
        self.delta_normalizer = Normalizer(spec.obs_dim)
        self.reward_normalizer = Normalizer(1)
        widths = (spec.obs_dim + spec.act_dim, *config.hidden)
        self.hidden = nn.ModuleList(EnsembleLinear(config.ensemble_size, a, b) for a, b in pairwise(widths))
        self.head = EnsembleLinear(config.ensemble_size, widths[-1], spec.obs_dim + 2)

    @property
    def members(self) -> int:
        return self.config.ensemble_size

    def fit_normalizers(self, data: OfflineTensors) -> None:
        """Freeze input and target statistics on the offline data."""
        self.obs_normalizer.fit(data.obs)
        self.delta_normalizer.fit(data.next_obs - data.obs)
        self.reward_normalizer.fit(data.rew.unsqueeze(-1))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised (delta s, r) and the termination logit per member; inputs [B, .] or [E, B, .]."""
        x = torch.cat([self.obs_normalizer(obs), unit_action(self.spec, act)], dim=-1)
        x = x.expand(self.members, *x.shape[-2:])
        for layer in self.hidden:
            x = F.silu(layer(x))
        out = self.head(x)
        return out[..., :-2], out[..., -2], out[..., -1]

    def predict(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every member's next state [E, B, obs_dim], reward [E, B] and termination probability [E, B]."""
        delta, reward, logit = self(obs, act)
        next_obs = obs + self.delta_normalizer.unnormalize(delta)
        reward = self.reward_normalizer.unnormalize(reward.unsqueeze(-1)).squeeze(-1)
        return next_obs, reward, torch.sigmoid(logit)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum over members of MSE(delta s) + MSE(r) in normalised units + BCE(terminated); batch [E, B, .]."""
        delta, reward, logit = self(batch["obs"], batch["act"])
        delta_target = self.delta_normalizer(batch["next_obs"] - batch["obs"])
        reward_target = self.reward_normalizer(batch["rew"].unsqueeze(-1)).squeeze(-1)
        per_member = ((delta - delta_target).square().mean((-2, -1)) + (reward - reward_target).square().mean(-1)
                      + F.binary_cross_entropy_with_logits(logit, batch["terminated"], reduction="none").mean(-1))
        return per_member.sum()

    @torch.no_grad()
    def rollout_return(self, policy: GaussianPolicy, start_obs: torch.Tensor, horizon: int, gamma: float,
                       deterministic: bool = True, generator: torch.Generator | None = None) -> float:
        """Estimated mean discounted return of `policy` from `start_obs` [N, obs_dim] (OPE).

        Each step draws one ensemble member per rollout.  Termination is handled in expectation:
        rewards are weighted by the predicted probability that the episode is still running, which
        is what stopping after a sampled termination averages to, without its variance.
        """
        obs = start_obs
        rows = torch.arange(len(obs))
        survival = torch.ones(len(obs))
        total = torch.zeros(len(obs))
        for t in range(horizon):
            dist = policy(obs)
            act = dist.mean if deterministic else dist.mean + dist.stddev * torch.randn(
                dist.mean.shape, generator=generator)
            next_obs, reward, done = self.predict(obs, clip_action(self.spec, act))
            member = torch.randint(self.members, (len(obs),), generator=generator)
            total += gamma**t * survival * reward[member, rows]
            survival = survival * (1.0 - done[member, rows])
            obs = next_obs[member, rows]
        return float(total.mean())


def train_dynamics(data: Transitions, spec: TaskSpec, config: DynamicsConfig = DynamicsConfig(), seed: int = 0,
                   progress: bool = False, log: MetricLog | None = None) -> DynamicsEnsemble:
    """Fit the ensemble on `data` (validated against `spec`); each member sees its own minibatches."""
    tensors = OfflineTensors.from_transitions(data, spec, "dynamics training data")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DynamicsEnsemble(spec, config)
    model.fit_normalizers(tensors)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    for step in tqdm(range(config.steps), desc="dynamics ensemble", disable=not progress):
        batch = tensors.sample(config.ensemble_size * config.batch_size, generator)
        batch = {key: value.reshape(config.ensemble_size, config.batch_size, *value.shape[1:])
                 for key, value in batch.items()}
        loss = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if log is not None:
            log("dynamics", step, {"loss": loss.item()})
    return model.eval()
