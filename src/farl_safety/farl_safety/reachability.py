"""FOSP's reachability estimation function (REF): will the trajectory from here reach a failure?

FOSP (Cao et al., "FOSP: Fine-tuning Offline Safe Policy through World Models", ICLR 2025) keeps
its agent safe under a hard constraint with a reachability estimation function, the feasibility
value of RESPO (Ganai et al., NeurIPS 2023): the (discounted) probability that the trajectory from
(s, a) ever enters the violation set.  Its backup takes a maximum instead of a sum,

    Q_ref(s, a) = max( h(s, a),  mu (1 - terminated) V_ref(s') ),    h = 1[IR failure]

so a state is as unsafe as the worst thing that can follow it.  FOSP's code discounts by mu = 0.99.

In-sample, as FOSP's offline phase (and FISOR, Zheng et al., ICLR 2024) learns its feasibility
value: V_ref(s) is fitted to the target copy of Q_ref over the data's own actions by a *lower*
expectile, so it tracks the safest action the data shows in s, and no action outside the data is
ever queried.  A state is feasible when V_ref(s) is small; FOSP gates its policy objective softly
with the REF value itself, and `safe_offline.py` does the same.

With FailureBench's IR failures ending the episode, max(c, mu V') is Recovery-RL's
c + (1 - c) gamma Q' in different clothes: the critics differ in what they bootstrap from, the
safest data action here against the task policy's next action there (`recovery_rl.py`).

Both heads of the twin Q_ref are squashed by a sigmoid into [0, 1] and combined by the maximum
(the pessimistic head for a risk), as for Q-risk.  `risk(obs, act)` makes the REF a `RiskCritic`,
so the shield, calibration and `farl bench shielded` take it as they take the others.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from farl_core.checkpoint import load_checkpoint, save_checkpoint
from farl_core.config import from_mapping, param, to_mapping
from farl_core.metrics import MetricLog
from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_policy.critics import TwinQ, ValueFunction, expectile_loss
from farl_policy.layers import polyak_update
from farl_policy.offline_data import OfflineTensors, clip_action, failure_costs

KIND = "reachability"


@dataclass(frozen=True)
class ReachabilityConfig:
    """REF hyper-parameters and their sources."""

    # mu of the max-backup: FOSP's code (RefVFunction) discounts the reachability target by 0.99.
    discount: float = param(0.99, gt=0.0, le=1.0)
    # Lower expectile of V_ref over the data's actions: 1 - 0.9, FISOR's feasibility expectile 0.9
    # applied to the reversed residual (FOSP's code uses 0.8 on its value heads).
    expectile: float = param(0.1, gt=0.0, lt=1.0)
    # Ours: Q_ref(s, a) above this makes an action infeasible (FISOR's Q_h <= 0 on a signed h; the REF
    # is a probability).  The FailureBench grid replaces it by the threshold calibrated for the same
    # failure recall as the other critics (pretrain.py), saved with the checkpoint.
    feasible: float = param(0.5, ge=0.0, le=1.0)
    # Polyak rate of the target twin: FOSP's code updates its slow critics at fraction 0.02 every
    # step (IQL's 0.005 left V_ref at its initial 0.5 after 1,500 point-mass steps).
    target_tau: float = param(0.02, gt=0.0, le=1.0)
    # lr, batch, widths: IQL's, as the project's reward critics.
    lr: float = param(3e-4, gt=0.0)
    batch_size: int = param(256, ge=1)
    hidden: tuple[int, ...] = param((256, 256), ge=1)
    steps: int = param(10_000, ge=1)


class ReachabilityCritic(nn.Module):
    """Q_ref(s, a) and V_ref(s) in [0, 1], with a slowly tracking target copy of Q_ref."""

    def __init__(self, spec: TaskSpec, config: ReachabilityConfig = ReachabilityConfig()) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.q = TwinQ(spec, config.hidden)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.v = ValueFunction(spec, config.hidden)

    def q_value(self, obs: torch.Tensor, act: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Pessimistic Q_ref(s, a): the larger of the two sigmoid heads, [B]; differentiable in `act`."""
        first, second = (self.q_target if target else self.q).both(obs, clip_action(self.spec, act))
        return torch.maximum(torch.sigmoid(first), torch.sigmoid(second))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V_ref(s): reachability of a failure under the safest data action, [B]."""
        return torch.sigmoid(self.v(obs))

    @torch.inference_mode()
    def risk(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q_ref(s, a) as the shield's risk score (RiskCritic)."""
        return self.q_value(obs, act)

    @torch.no_grad()
    def bellman_target(self, cost: torch.Tensor, next_obs: torch.Tensor, terminated: torch.Tensor) -> torch.Tensor:
        """max(h, mu (1 - terminated) V_ref(s')), [B] (module docstring)."""
        return torch.maximum(cost, self.config.discount * (1.0 - terminated) * self.value(next_obs))

    def losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(V loss, Q loss) of one minibatch: the lower expectile of V_ref towards the target twin's
        Q_ref on the data action, and the squared error of both Q heads against the max-backup."""
        with torch.no_grad():
            q_data = self.q_value(batch["obs"], batch["act"], target=True)
        value_loss = expectile_loss(q_data - self.value(batch["obs"]), self.config.expectile)
        target = self.bellman_target(batch["cost"], batch["next_obs"], batch["terminated"])
        first, second = self.q.both(batch["obs"], clip_action(self.spec, batch["act"]))
        q_loss = F.mse_loss(torch.sigmoid(first), target) + F.mse_loss(torch.sigmoid(second), target)
        return value_loss, q_loss

    def update_target(self) -> None:
        polyak_update(self.q_target, self.q, self.config.target_tau)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write Q_ref, its target, V_ref (normalisers included), config and task spec."""
        return save_checkpoint(path, kind=KIND, tensors=dict(self.state_dict()), spec=self.spec,
                               config={"reachability": to_mapping(self.config)}, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, spec: TaskSpec | None = None) -> ReachabilityCritic:
        """Load a checkpoint; with `spec`, refuse one trained for a different task (SpecError)."""
        checkpoint = load_checkpoint(path, kind=KIND, spec=spec)
        config = from_mapping(ReachabilityConfig, checkpoint.config["reachability"], where=f"checkpoint {path}")
        critic = cls(checkpoint.spec, config)
        critic.load_state_dict(checkpoint.tensors)
        return critic.eval()


def train_reachability(data: Transitions, spec: TaskSpec, config: ReachabilityConfig = ReachabilityConfig(),
                       seed: int = 0, progress: bool = False, log: MetricLog | None = None) -> ReachabilityCritic:
    """Fit the REF in-sample on task, recovery and failure transitions (no action outside the data).

    Seeding is local (the global torch RNG is left as it was).  Returns the critic in eval mode.
    """
    tensors = OfflineTensors.from_transitions(data, spec, "REF training data")
    cost = failure_costs(data, "REF training data")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        critic = ReachabilityCritic(spec, config)
    for normalizer in (critic.q.normalizer, critic.q_target.normalizer, critic.v.normalizer):
        normalizer.fit(tensors.obs)
    v_optimiser = torch.optim.Adam(critic.v.parameters(), lr=config.lr)
    q_optimiser = torch.optim.Adam(critic.q.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    critic.train()
    for step in tqdm(range(config.steps), desc="REF", disable=not progress):
        rows = torch.randint(len(tensors), (config.batch_size,), generator=generator)
        batch = {**tensors.rows(rows), "cost": cost[rows]}
        value_loss, q_loss = critic.losses(batch)
        for optimiser, loss in ((v_optimiser, value_loss), (q_optimiser, q_loss)):
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        critic.update_target()
        if log is not None:
            log("reachability", step, {"value_loss": value_loss.item(), "q_loss": q_loss.item()})
    return critic.eval()
