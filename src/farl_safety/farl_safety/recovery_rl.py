"""Recovery-RL's Q-risk safety critic: the "Rec-RL" ablation of the paper (section V.A, Study 1).

FARL's critic imagines the next H steps in a world model (Eq. 1).  The ablation replaces it with
the model-free critic of Recovery RL (Thananjeyan et al., RA-L 2021, the paper's ref. [20]): an
MLP Q_risk(s, a) estimating the discounted probability of a future constraint violation under the
task policy (paper Eq. 15), fitted offline on the same task + failure transitions the world
model gets.  Everything else (shield, eps_safe, recovery policy) stays as in FARL.

The backup.  The paper prints Eq. 16 as  Q = c_t + (1 - gamma_safe) E[Q(s', a')].  Recovery
RL's own backup (its paper, Sec. IV-A, and its reference code) is

    Q_risk(s, a) = c + (1 - c) * gamma_safe * E_{a' ~ pi(.|s')}[Q_risk(s', a')],

because a constraint violation ends the episode: once c = 1 nothing after it counts, and the
value is then exactly 1.  "(1 - gamma_safe)" in Eq. 16 looks like a typo for "(1 - c_t) gamma":
with it, a larger gamma_safe would weigh the future *less*, contradicting Eq. 15 right above.
This module implements Recovery RL's semantics.  A termination that is not a failure (success)
also ends the sum (mask 1 - terminated); a time-limit truncation bootstraps, as in every critic
of this project.

Choices, each as in Recovery RL's reference implementation:
  * twin Q heads (the project's `TwinQ`), each squashed by a sigmoid into [0, 1] (Q_risk is a
    discounted probability of failure, <= 1 by the backup), and combined by the *maximum*: for
    a risk estimate the pessimistic head is the larger one (the opposite of TD3's min for
    rewards);
  * a Polyak-averaged target copy provides the bootstrap value;
  * the next action a' is sampled from the task policy pi (the policy the shield protects), not
    taken from the data: Q_risk is "under the current policy" (Eq. 15), and the failure
    demonstrations' behaviour is deliberately worse than the task policy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal
from tqdm import tqdm

from farl_core.checkpoint import load_checkpoint, save_checkpoint
from farl_core.config import from_mapping, param, to_mapping
from farl_core.metrics import MetricLog
from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_policy.critics import TwinQ
from farl_policy.layers import polyak_update
from farl_policy.offline_data import OfflineTensors, clip_action, failure_costs

KIND = "recovery_rl_critic"


class SamplingPolicy(Protocol):
    """What the backup needs of the task policy (GaussianPolicy meets it): pi(.|s) as a Normal."""

    spec: TaskSpec

    def __call__(self, obs: torch.Tensor) -> Normal:
        ...


@dataclass(frozen=True)
class QRiskConfig:
    """Q-risk hyper-parameters; defaults are Recovery RL's reference code (main.py / SAC) unless noted."""

    # gamma_safe of Eq. 15: Recovery RL's command-line default 0.5 (its experiments use 0.5-0.85
    # per environment).  0.5 gives an effective horizon of ~2 steps, near FARL's H = 3.
    gamma_safe: float = param(0.5, gt=0.0, lt=1.0)
    # Polyak rate of the target twin: Recovery RL's --tau_safe 0.0002 (slow, for a stable target).
    target_tau: float = param(0.0002, gt=0.0, le=1.0)
    # Adam lr and batch size of Recovery RL's SAC-based critic (3e-4, 256); hidden 256 x 2 likewise.
    lr: float = param(3e-4, gt=0.0)
    batch_size: int = param(256, ge=1)
    hidden: tuple[int, ...] = param((256, 256), ge=1)
    # Offline pre-training gradient steps: Recovery RL's --critic_safe_pretraining_steps 10000.
    steps: int = param(10_000, ge=1)


class QRiskCritic(nn.Module):
    """Q_risk(s, a) in [0, 1]: online twin, target twin; `risk` is what the shield calls."""

    def __init__(self, spec: TaskSpec, config: QRiskConfig = QRiskConfig()) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.q = TwinQ(spec, config.hidden)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)

    @staticmethod
    def _value(twin: TwinQ, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both heads of `twin` squashed to probabilities."""
        first, second = twin.both(obs, act)
        return torch.sigmoid(first), torch.sigmoid(second)

    @torch.inference_mode()
    def risk(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Pessimistic Q_risk(s, a) = max of the two heads, [B]; `act` is clipped to the action box
        first, as the robot bridge will clip it (the same convention as SafetyCritic.risk)."""
        return torch.maximum(*self._value(self.q, obs, clip_action(self.spec, act)))

    @torch.no_grad()
    def bellman_target(self, cost: torch.Tensor, next_obs: torch.Tensor, next_act: torch.Tensor,
                       terminated: torch.Tensor) -> torch.Tensor:
        """c + (1 - c) (1 - terminated) gamma_safe max_i Q_target,i(s', a'), [B] (module docstring)."""
        bootstrap = torch.maximum(*self._value(self.q_target, next_obs, clip_action(self.spec, next_act)))
        return cost + (1.0 - cost) * (1.0 - terminated) * self.config.gamma_safe * bootstrap

    def loss(self, obs: torch.Tensor, act: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Squared error of both online heads against the backed-up target."""
        first, second = self._value(self.q, obs, act)
        return F.mse_loss(first, target) + F.mse_loss(second, target)

    def update_target(self) -> None:
        """Polyak-average the online twin into the target twin at rate target_tau."""
        polyak_update(self.q_target, self.q, self.config.target_tau)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write both twins (normalisers included), config and task spec as a "recovery_rl_critic"."""
        return save_checkpoint(path, kind=KIND, tensors=dict(self.state_dict()), spec=self.spec,
                               config={"q_risk": to_mapping(self.config)}, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, spec: TaskSpec | None = None) -> QRiskCritic:
        """Load a checkpoint; with `spec`, refuse one trained for a different task (SpecError)."""
        checkpoint = load_checkpoint(path, kind=KIND, spec=spec)
        config = from_mapping(QRiskConfig, checkpoint.config["q_risk"], where=f"checkpoint {path}")
        critic = cls(checkpoint.spec, config)
        critic.load_state_dict(checkpoint.tensors)
        return critic.eval()


def train_q_risk(data: Transitions, spec: TaskSpec, policy: SamplingPolicy, config: QRiskConfig = QRiskConfig(),
                 seed: int = 0, progress: bool = False, log: MetricLog | None = None) -> QRiskCritic:
    """Fit Q_risk offline on task + failure transitions by the Recovery-RL backup.

    Each step samples a uniform minibatch, draws a' ~ pi(.|s') with a local generator, regresses
    both heads on the target and Polyak-updates the target twin.  Seeding is local (the global
    torch RNG is left as it was).  Returns the critic in eval mode.
    """
    tensors = OfflineTensors.from_transitions(data, spec, "Q-risk training data")
    spec.require_same(policy.spec, "the task policy given to the Q-risk critic")
    cost = failure_costs(data, "Q-risk training data")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        critic = QRiskCritic(spec, config)
    for normalizer in (critic.q.normalizer, critic.q_target.normalizer):
        normalizer.fit(tensors.obs)
    optimiser = torch.optim.Adam(critic.q.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    critic.train()
    for step in tqdm(range(config.steps), desc="Q-risk critic", disable=not progress):
        rows = torch.randint(len(tensors), (config.batch_size,), generator=generator)
        with torch.no_grad():
            pi = policy(tensors.next_obs[rows])
            next_act = pi.mean + pi.stddev * torch.randn(pi.mean.shape, generator=generator)
        target = critic.bellman_target(cost[rows], tensors.next_obs[rows], next_act, tensors.terminated[rows])
        loss = critic.loss(tensors.obs[rows], tensors.act[rows], target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        critic.update_target()
        if log is not None:
            log("q_risk", step, {"loss": loss.item(), "target_mean": float(target.mean())})
    return critic.eval()

