"""MPPI planning on the world model: the "MPPI" ablation of the paper (section V.A, Study 2).

The ablation replaces FARL's pre-trained recovery policy with a sampling-based planner (MPPI,
the paper's ref. [26]) on the same world model, "to evaluate the necessity of a separate
pre-trained recovery policy".  Per the paper, the planner
  1. samples action sequences from a Gaussian,
  2. computes their rewards and constraints with the world model,
  3. filters them by the safety threshold eps_safe, and
  4. selects the best safe sequence by expected return.
Here the sequence's risk is Eq. 1 along the plan, sum_i gamma_risk^i P(C(z_i, a_i) = 1), and its
return the sum of predicted rewards.  Steps 1-2 repeat for a few iterations, refitting the
Gaussian to the elite sequences with MPPI's exponentiated weights exp(temperature (R - R_max))
(TD-MPC2's form) computed among the *safe* elites only; when an iteration finds no safe sequence
at all, the elites are the least risky ones and are weighted by exp(-temperature (risk - risk_min)).
The executed action is the first action of the best sequence seen over all iterations: a safe
one with the highest return, else (nothing safe found) the least risky one.

It is a `RecoveryActor` (shield.py): `mean(obs)` is batched over observations and deterministic
given its seeded generator.  No warm start between calls: the shield calls it only on the rows
it overrides, whose number and identity change from step to step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from farl_core.config import param
from farl_safety.world_model import WorldModel


@dataclass(frozen=True)
class MPPIConfig:
    """Planner settings.  Defaults: TD-MPC2's MPPI, scaled down where it plans on a CPU every 200 ms."""

    # Planned actions per sequence.  4 actions = steps t..t+3, the same window as the shield's
    # C_H with H = 3, so a sequence's risk is on the scale of eps_safe.  At most the world
    # model's training horizon (checked): it was never fitted to longer rollouts.
    horizon: int = param(4, ge=1, le=100)
    # TD-MPC2: 512 samples, 64 elites, 6 iterations; halved (twice for iterations) for a CPU.
    num_samples: int = param(256, ge=1)
    num_elites: int = param(32, ge=1)
    iterations: int = param(3, ge=1)
    # TD-MPC2's temperature 0.5, multiplying (return - best return) in the exponent.
    temperature: float = param(0.5, gt=0.0)
    # Sampling std in unit action space ([-1, 1] = the action box): TD-MPC2 starts at max_std 2
    # and floors the refitted std at min_std 0.05.
    min_std: float = param(0.05, gt=0.0)
    max_std: float = param(2.0, gt=0.0)
    # Safety filter: eps_safe on the sequence risk (set it to the shield's eps_safe, 0.3 by
    # default there) and gamma_risk of Eq. 1 (SafetyCriticConfig's 0.9).
    eps_safe: float = param(0.3, gt=0.0)
    gamma_risk: float = param(0.9, gt=0.0, le=1.0)

    def __post_init__(self) -> None:
        if self.num_elites > self.num_samples:
            raise ValueError(f"num_elites ({self.num_elites}) must not exceed num_samples ({self.num_samples})")
        if self.min_std > self.max_std:
            raise ValueError(f"min_std ({self.min_std}) must not exceed max_std ({self.max_std})")


class MPPIPlanner:
    """Safe-first MPPI over a world model; `mean(obs)` plans one recovery action per row."""

    def __init__(self, world_model: WorldModel, config: MPPIConfig = MPPIConfig(), seed: int = 0) -> None:
        if config.horizon > world_model.config.horizon:
            raise ValueError(f"MPPI horizon {config.horizon} exceeds the world model's training horizon "
                             f"{world_model.config.horizon} (rollouts longer than trained compound its error)")
        self.world_model = world_model.eval()
        self.spec = world_model.spec
        self.config = config
        self.generator = torch.Generator().manual_seed(seed)
        self._discount = config.gamma_risk ** torch.arange(config.horizon, dtype=torch.float32)

    @torch.inference_mode()
    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        """Planned first action for each observation row, [B, act_dim] in the spec's action box."""
        cfg, wm = self.config, self.world_model
        batch = obs.shape[0]
        z0 = wm.encode(obs)
        mean = torch.zeros(batch, cfg.horizon, self.spec.act_dim)
        std = torch.full_like(mean, cfg.max_std)
        best_safe = torch.zeros(batch, dtype=torch.bool)
        best_score = torch.full((batch,), -torch.inf)
        best_action = torch.zeros(batch, self.spec.act_dim)
        rows = torch.arange(batch)
        for _ in range(cfg.iterations):
            noise = torch.randn((batch, cfg.num_samples) + mean.shape[1:], generator=self.generator)
            unit = (mean[:, None] + std[:, None] * noise).clamp(-1.0, 1.0)  # [B, N, H, A]
            ret, risk = self._evaluate(z0, unit)
            safe = risk <= cfg.eps_safe
            any_safe = safe.any(-1, keepdim=True)
            # Safe-first utility: return among safe sequences; -risk when none is safe.
            utility = torch.where(any_safe, torch.where(safe, ret, -torch.inf), -risk)
            top, index = utility.max(-1)
            better = (any_safe[:, 0] & ~best_safe) | ((any_safe[:, 0] == best_safe) & (top > best_score))
            best_action = torch.where(better[:, None], unit[rows, index, 0], best_action)
            best_score = torch.where(better, top, best_score)
            best_safe = best_safe | any_safe[:, 0]
            mean, std = self._refit(unit, utility)
        return wm.action_centre + wm.action_scale * best_action

    def _evaluate(self, z0: torch.Tensor, unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted return and Eq. 1 risk of every sampled sequence, each [B, N]."""
        wm = self.world_model
        action = wm.action_centre + wm.action_scale * unit
        z = z0[:, None].expand(-1, unit.shape[1], -1)
        ret = torch.zeros(unit.shape[:2])
        risk = torch.zeros(unit.shape[:2])
        for i in range(self.config.horizon):
            a = action[:, :, i]
            ret = ret + wm.reward(z, a)
            risk = risk + self._discount[i] * torch.sigmoid(wm.constraint_logit(z, a))
            z = wm.next(z, a)
        return ret, risk

    def _refit(self, unit: torch.Tensor, utility: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MPPI update: exponentially weighted mean and std of the elite sequences, [B, H, A] each."""
        cfg = self.config
        top, index = utility.topk(cfg.num_elites, dim=-1)                        # [B, K]
        elites = torch.gather(unit, 1, index[:, :, None, None].expand(-1, -1, *unit.shape[2:]))
        weight = torch.exp(cfg.temperature * (top - top[:, :1]))                  # -inf (unsafe) -> 0
        weight = (weight / weight.sum(-1, keepdim=True))[:, :, None, None]
        mean = (weight * elites).sum(1)
        std = (weight * (elites - mean[:, None]) ** 2).sum(1).sqrt().clamp(cfg.min_std, cfg.max_std)
        return mean, std
