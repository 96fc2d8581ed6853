"""The shield: execute the task action unless its predicted failure risk is too high.

For each control step it scores the proposed task action with the H-step safety critic
(C_H, paper Eq. 1) and, when C_H > eps_safe, executes the frozen recovery policy's action
instead (paper Fig. 2).  It returns the executed action and a verdict per stream, the
dataclass behind the /farl/safety topic.

Both parts are interfaces, so the paper's ablations (section V.A) plug into the same shield:
`RiskCritic` is met by the world-model `SafetyCritic` and by Recovery-RL's Q-risk critic
("Rec-RL"); `RecoveryActor` by the recovery `GaussianPolicy` and by the MPPI planner ("MPPI").

With `recovery_must_lower_risk`, an alarm swaps the recovery in only where the same critic rates the
recovery's action less risky than the proposed one; otherwise the task action runs.

How the task policy learns from a replaced step is the `update_with` option:
  "executed"  train on the recovery action that was actually executed, with its log-probability
              under the task policy: FARL's action correction (paper Theorem 1), the default.
  "proposed"  relabel: keep the task policy's own proposed action paired with the observed
              outcome, as Recovery-RL does for its task policy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch
from torch import nn

from farl_core.config import param
from farl_core.spec import TaskSpec


class RiskCritic(Protocol):
    """What the shield needs of a safety critic: SafetyCritic (C_H) and QRiskCritic meet it."""

    spec: TaskSpec

    def risk(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Failure risk of each (observation, action) row, [B]; compared with eps_safe."""
        ...


class RecoveryActor(Protocol):
    """What the shield needs of the recovery side: GaussianPolicy and MPPIPlanner meet it."""

    spec: TaskSpec

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic recovery action for each row of a batch of raw observations, [B, act_dim]."""
        ...


@dataclass(frozen=True)
class ShieldConfig:
    """Shield threshold and training-label option (see module docstring)."""

    eps_safe: float = param(0.3, gt=0.0)  # pick with `farl calibrate` for a target failure recall
    update_with: Literal["executed", "proposed"] = "executed"
    # ours: swap the recovery in only where the critic rates the recovery's action less risky than the
    # task action (for C_H: the same imagined rollout of the task policy after either first action); where
    # it does not, the recovery cannot help from there (a ball already rolling out) and the task acts.
    recovery_must_lower_risk: bool = False


@dataclass(frozen=True)
class Verdict:
    """One stream's decision: the /farl/safety SafetyVerdict message without its header."""

    risk: float
    threshold: float
    overridden: bool
    source: Literal["task", "recovery", "offline"]  # "offline": FOSP's frozen offline policy
    latency_s: float


class ActionFilter(Protocol):
    """What the online fine-tuner and the robot loop need of whatever stands between the task policy and
    the robot: `Shield` (FARL and its ablations) and FOSP's `PolicyExpansion` meet it."""

    @property
    def update_with(self) -> str:
        """Which action PPO learns from on a replaced step: "executed", "proposed" or "own"
        (online.py, `OnlineFinetuner.record`)."""
        ...

    def filter(self, obs: np.ndarray, proposed: np.ndarray) -> tuple[np.ndarray, list[Verdict]]:
        """Executed actions [N, act_dim] and one verdict per row of obs [N, obs_dim]."""
        ...


class Shield:
    """Safety critic + frozen recovery actor, applied to (obs, proposed action) each control step."""

    def __init__(self, critic: RiskCritic, recovery: RecoveryActor, config: ShieldConfig = ShieldConfig()) -> None:
        critic.spec.require_same(recovery.spec, "the recovery actor given to the shield")
        if isinstance(recovery, nn.Module):  # a recovery policy stays frozen online (paper III.A)
            recovery.requires_grad_(False)
        self.critic = critic
        self.recovery = recovery
        self.config = config

    @property
    def update_with(self) -> str:
        return self.config.update_with

    @torch.inference_mode()
    def filter(self, obs: np.ndarray, proposed: np.ndarray) -> tuple[np.ndarray, list[Verdict]]:
        """Executed actions [N, act_dim] and one verdict per row of obs [N, obs_dim]."""
        start = time.perf_counter()
        spec = self.recovery.spec
        obs_t = torch.as_tensor(spec.check_observation(obs, "shield observation"))
        act_t = torch.as_tensor(spec.check_action(proposed, "proposed action"))
        risk = self.critic.risk(obs_t, act_t)
        unsafe = risk > self.config.eps_safe
        overridden = unsafe.clone()
        executed = act_t.clone()
        if bool(unsafe.any()):
            recovery = self.recovery.mean(obs_t[unsafe])
            if self.config.recovery_must_lower_risk:
                lowers = self.critic.risk(obs_t[unsafe], recovery) < risk[unsafe]
                overridden[unsafe] = lowers
                recovery = recovery[lowers]
            executed[overridden] = recovery
        latency = time.perf_counter() - start
        verdicts = [Verdict(float(r), self.config.eps_safe, bool(o), "recovery" if o else "task", latency)
                    for r, o in zip(risk.tolist(), overridden.tolist(), strict=True)]
        return executed.numpy(), verdicts
