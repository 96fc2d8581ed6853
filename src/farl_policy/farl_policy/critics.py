"""IQL critics: V(s) by expectile regression and twin Q(s, a) by a SARSA-style backup.

Uni-O4 improves the BC policy with advantages A = Q - V learnt from the offline data alone.
Implicit Q-learning (Kostrikov, Nair and Levine, "Offline Reinforcement Learning with Implicit
Q-Learning", ICLR 2022) fits them without ever querying Q at actions outside the data: V is an
upper expectile of Q over the data actions, and Q bootstraps from V(s').  Uni-O4 offers the
same critics (`--is_iql`).  The offline V also initialises the online PPO critic, so
`ValueFunction` is a standalone module with its own frozen observation normaliser.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from farl_core.checkpoint import load_checkpoint, save_checkpoint
from farl_core.config import param
from farl_core.metrics import MetricLog
from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_policy.layers import Normalizer, mlp, polyak_update
from farl_policy.offline_data import OfflineTensors, unit_action

CHECKPOINT_KIND = "iql_critics"


@dataclass(frozen=True)
class CriticConfig:
    """IQL hyper-parameters; defaults are IQL's MuJoCo settings (Kostrikov et al. 2022, App. B)."""

    gamma: float = param(0.99, gt=0.0, le=1.0)
    expectile: float = param(0.7, gt=0.0, lt=1.0)    # tau in IQL; Uni-O4 `--omega 0.7`
    target_tau: float = param(0.005, gt=0.0, le=1.0)  # Polyak rate of the target Q networks
    lr: float = param(3e-4, gt=0.0)
    hidden: tuple[int, ...] = param((256, 256), ge=1)
    batch_size: int = param(256, ge=1)
    # IQL runs 1e6 steps.  Values propagate one backup per ~1/target_tau steps, so this must exceed
    # (episode length) / target_tau by a margin; demo sets of a few dozen episodes need far fewer.
    steps: int = param(50_000, ge=1)


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """IQL's expectile loss |tau - 1(u < 0)| u^2, averaged over u = target - prediction.

    With tau > 0.5 an under-estimate (u > 0) costs more than an over-estimate, so the minimiser
    is an upper expectile: V(s) approaches the value of the better data actions, not their mean.
    """
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.square()).mean()


class ValueFunction(nn.Module):
    """V(s): standalone, so the online PPO critic can start as a copy of the offline one."""

    def __init__(self, spec: TaskSpec, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.normalizer = Normalizer(spec.obs_dim)
        self.body = mlp(spec.obs_dim, hidden, 1, activation=nn.ReLU)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """State value V(s), shape [...]."""
        return self.body(self.normalizer(obs)).squeeze(-1)


class TwinQ(nn.Module):
    """Two independent Q(s, a) heads; their minimum curbs over-estimation (IQL, after TD3)."""

    def __init__(self, spec: TaskSpec, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.spec = spec
        self.normalizer = Normalizer(spec.obs_dim)
        self.heads = nn.ModuleList(mlp(spec.obs_dim + spec.act_dim, hidden, 1, activation=nn.ReLU)
                                   for _ in range(2))

    def both(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both heads' Q(s, a), each of shape [...]."""
        x = torch.cat([self.normalizer(obs), unit_action(self.spec, act)], dim=-1)
        first, second = (head(x).squeeze(-1) for head in self.heads)
        return first, second

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Pessimistic Q(s, a): the minimum of the two heads."""
        return torch.minimum(*self.both(obs, act))


class ValueCritics(nn.Module):
    """The IQL critic set: V, twin Q and the slowly tracking target copy of Q."""

    def __init__(self, spec: TaskSpec, config: CriticConfig = CriticConfig()) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.v = ValueFunction(spec, config.hidden)
        self.q = TwinQ(spec, config.hidden)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)

    def fit_normalizers(self, obs: torch.Tensor) -> None:
        """Freeze every network's observation statistics on the offline data."""
        for normalizer in (self.v.normalizer, self.q.normalizer, self.q_target.normalizer):
            normalizer.fit(obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s)."""
        return self.v(obs)

    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """min_i Q_i(s, a) of the online twin."""
        return self.q(obs, act)

    def advantage(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """A(s, a) = Q(s, a) - V(s), the advantage of paper Eq. 3 in the offline phase."""
        return self.q(obs, act) - self.v(obs)

    def value_loss(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Expectile regression of V(s) towards the target twin's min Q(s, a) on data actions."""
        with torch.no_grad():
            target = self.q_target(obs, act)
        return expectile_loss(target - self.v(obs), self.config.expectile)

    def q_loss(self, obs: torch.Tensor, act: torch.Tensor, rew: torch.Tensor, next_obs: torch.Tensor,
               terminated: torch.Tensor) -> torch.Tensor:
        """Squared TD error of both heads against r + gamma (1 - terminated) V(s').

        Only true terminations stop the bootstrap; a time-limit truncation still bootstraps.
        """
        with torch.no_grad():
            target = rew + self.config.gamma * (1.0 - terminated) * self.v(next_obs)
        first, second = self.q.both(obs, act)
        return (first - target).square().mean() + (second - target).square().mean()

    def update_target(self) -> None:
        """Polyak-average the online Q into the target Q at rate tau."""
        polyak_update(self.q_target, self.q, self.config.target_tau)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write all critic tensors and the config as a FARL checkpoint."""
        return save_checkpoint(path, kind=CHECKPOINT_KIND, tensors=dict(self.state_dict()), spec=self.spec,
                               config={"critics": asdict(self.config)}, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, spec: TaskSpec | None = None) -> ValueCritics:
        """Read critics saved by `save`; refuse them if they were trained for another task spec."""
        checkpoint = load_checkpoint(path, kind=CHECKPOINT_KIND, spec=spec)
        raw = checkpoint.config["critics"]
        critics = cls(checkpoint.spec, CriticConfig(**{**raw, "hidden": tuple(raw["hidden"])}))
        critics.load_state_dict(checkpoint.tensors)
        return critics


def train_critics(data: Transitions, spec: TaskSpec, config: CriticConfig = CriticConfig(), seed: int = 0,
                  progress: bool = False, log: MetricLog | None = None) -> ValueCritics:
    """Fit IQL's V and twin Q on `data` (validated against `spec`); returns them in eval mode."""
    tensors = OfflineTensors.from_transitions(data, spec, "critic training data")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        critics = ValueCritics(spec, config)
    critics.fit_normalizers(tensors.obs)
    v_optimizer = torch.optim.Adam(critics.v.parameters(), lr=config.lr)
    q_optimizer = torch.optim.Adam(critics.q.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    for step in tqdm(range(config.steps), desc="IQL critics", disable=not progress):
        batch = tensors.sample(config.batch_size, generator)
        value_loss = _step(v_optimizer, critics.value_loss(batch["obs"], batch["act"]))
        q_loss = _step(q_optimizer, critics.q_loss(**batch))
        critics.update_target()
        if log is not None:
            log("critics", step, {"value_loss": value_loss, "q_loss": q_loss})
    return critics.eval()


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()
