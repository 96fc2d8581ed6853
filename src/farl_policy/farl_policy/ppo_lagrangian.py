"""PPO-Lagrangian: the safe-RL baseline of the paper's Table I, fine-tuning the same offline policy.

PPO-Lagrangian (Ray, Achiam and Amodei 2019, the paper's ref. [13]) solves the CMDP of Eq. 2 in
its expected-cost form, max_pi J_r s.t. J_c <= cost_limit, through the Lagrangian
J_r - lambda (J_c - cost_limit):
  * a cost value function V_c(s) is learnt next to V(s), and GAE gives cost advantages A_c;
  * the policy takes PPO's clipped step (Eq. 3) on the combined advantage
    (A_r - lambda A_c) / (1 + lambda): the 1 / (1 + lambda) keeps its scale bounded however
    large lambda grows (both advantages are standardised over the rollout first);
  * lambda >= 0 takes a gradient-ascent step on lambda (J_c - cost_limit) per update, with J_c
    the mean cost of the episodes that ended in the rollout, so it grows while the policy
    spends more than the budget and shrinks (to 0, where it is clipped) while it spends less.
    The multiplier is updated before the policy, as in OmniSafe.

`PPO` minibatch-normalises the advantage it is given, which rescales the combined advantage
once more; that keeps its direction (A_r - lambda A_c) and only changes the step size, which is
what the 1 / (1 + lambda) factor controls in the first place.

IR failures end the episode with cost 1, so an episode's cost is 0 or 1 and J_c is the failure
rate per episode: the budget `cost_limit` is a tolerated fraction of failing episodes.  The dual
gradient is then lopsided: up to 1 - cost_limit while failing, at most cost_limit while not.
With Adam (momentum, and a step scaled by the gradient's running RMS) a burst of failures keeps
lambda rising for a few dozen failure-free updates before it turns and decays slowly; that is
the baseline's behaviour with OmniSafe's optimiser, kept as published rather than tuned away.

`OnlineFinetuner` drives it like PPO: it records transitions into a `CostRolloutBuffer`, which
also keeps the next observations, so V_c can be evaluated on s and s' at update time.  That is
exact: V_c changes only inside `update`, so its values during collection are the same.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from farl_core.config import param
from farl_policy.gaussian import GaussianPolicy
from farl_policy.ppo import PPO, PPOConfig, RolloutBuffer, gae


@dataclass(frozen=True)
class LagrangianConfig:
    """Lagrange-multiplier and cost-critic settings, with their sources."""

    # OmniSafe's PPOLag defaults: multiplier initialised at 0.001 and trained by Adam with
    # lr 0.035 (Safety-Gym's reference PPO-Lagrangian also uses Adam, lr 0.05).
    lambda_init: float = param(0.001, ge=0.0)
    lambda_lr: float = param(0.035, gt=0.0)
    # Budget on the expected episode cost.  Safety Gym / OmniSafe use 25 per 1000-step episode,
    # i.e. a cost on 2.5% of the steps.  An IR failure costs 1 and ends the episode, so the cost
    # of an episode is 0 or 1 and the same 2.5% becomes a tolerated failure rate per episode.
    cost_limit: float = param(0.025, ge=0.0)
    # Discount and GAE lambda of the cost critic: OmniSafe's cost_gamma 0.99 and lam_c 0.95,
    # the same as the reward side's.
    cost_gamma: float = param(0.99, gt=0.0, le=1.0)
    cost_gae_lambda: float = param(0.95, ge=0.0, le=1.0)


class CostRolloutBuffer(RolloutBuffer):
    """RolloutBuffer that also keeps s' (the final observation at an episode end) per step."""

    KEYS = RolloutBuffer.KEYS + ("next_obs",)

    def add(self, *, next_obs: np.ndarray, **step: np.ndarray) -> None:
        """One step of every stream: RolloutBuffer.add's fields plus the next observations."""
        super().add(**step)
        self.rows["next_obs"].append(np.asarray(next_obs, dtype=np.float32))


class LagrangeMultiplier:
    """lambda >= 0 trained by Adam on the loss -lambda (J_c - cost_limit), then clipped at 0."""

    def __init__(self, config: LagrangianConfig) -> None:
        self.config = config
        self.raw = torch.tensor(float(config.lambda_init), requires_grad=True)
        self.optimiser = torch.optim.Adam([self.raw], lr=config.lambda_lr)

    @property
    def value(self) -> float:
        return float(self.raw.detach())

    def update(self, episode_cost: float) -> None:
        """One ascent step on lambda (J_c - cost_limit): up while over budget, down while under."""
        loss = -self.raw * (episode_cost - self.config.cost_limit)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
        with torch.no_grad():
            self.raw.clamp_(min=0.0)


class _Prepared:
    """A buffer stand-in whose batch is already computed, so PPO.update runs its epochs on it."""

    def __init__(self, data: dict[str, torch.Tensor]) -> None:
        self.data = data

    def batch(self, gamma: float, lam: float) -> dict[str, torch.Tensor]:
        return self.data


class PPOLagrangian(PPO):
    """PPO on the Lagrangian advantage, plus a cost critic V_c and a multiplier lambda."""

    def __init__(self, policy: GaussianPolicy, value: nn.Module, config: PPOConfig, total_updates: int,
                 lagrangian: LagrangianConfig = LagrangianConfig(), cost_value: nn.Module | None = None,
                 seed: int = 0) -> None:
        """`cost_value` defaults to a copy of `value` with its layers re-initialised (seeded): the
        same architecture and frozen observation normaliser, but no reward knowledge."""
        super().__init__(policy, value, config, total_updates, seed=seed)
        self.lagrangian = lagrangian
        self.multiplier = LagrangeMultiplier(lagrangian)
        self.cost_value = cost_value if cost_value is not None else _fresh_copy(value, seed)
        self.cost_value_optim = torch.optim.Adam(self.cost_value.parameters(), lr=config.value_lr)
        self.schedulers.append(torch.optim.lr_scheduler.LambdaLR(self.cost_value_optim,
                                                                 self.schedulers[0].lr_lambdas[0]))
        self._episode_cost: np.ndarray | None = None  # per stream, carried across rollouts

    def update(self, buffer: CostRolloutBuffer) -> dict[str, float]:
        """Update lambda from the rollout's episode costs, then run PPO's epochs on the Lagrangian
        advantage while regressing V_c on the cost returns."""
        cfg, lag = self.config, self.lagrangian
        data = buffer.batch(cfg.gamma, cfg.gae_lambda)
        arrays = {k: np.stack(buffer.rows[k]) for k in ("obs", "next_obs", "cost", "terminated", "done")}
        with torch.no_grad():
            cost_value = self.cost_value(torch.as_tensor(arrays["obs"])).numpy()
            next_cost_value = self.cost_value(torch.as_tensor(arrays["next_obs"])).numpy()
        cost_adv, cost_ret = gae(arrays["cost"].astype(np.float32), cost_value, next_cost_value, arrays["terminated"],
                                 arrays["done"], lag.cost_gamma, lag.cost_gae_lambda)
        episode_costs = self._finished_episode_costs(arrays["cost"], arrays["done"])
        if episode_costs:
            self.multiplier.update(float(np.mean(episode_costs)))
        penalty = self.multiplier.value
        reward_adv = _standardise(data["advantage"])
        cost_adv_t = _standardise(torch.as_tensor(cost_adv.reshape(-1)))
        data["advantage"] = (reward_adv - penalty * cost_adv_t) / (1.0 + penalty)
        data["cost_return"] = torch.as_tensor(cost_ret.reshape(-1))
        stats = super().update(_Prepared(data))
        return {**stats, "lambda": penalty,
                "episode_cost": float(np.mean(episode_costs)) if episode_costs else float("nan"),
                "episodes": float(len(episode_costs))}

    def _minibatch_step(self, mb: dict[str, torch.Tensor], stats: dict[str, list[float]]) -> None:
        """PPO's policy and value step, then one step of V_c towards the cost returns."""
        super()._minibatch_step(mb, stats)
        loss = self.config.value_coef * (self.cost_value(mb["obs"]) - mb["cost_return"]).pow(2).mean()
        self.cost_value_optim.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.cost_value.parameters(), self.config.max_grad_norm)
        self.cost_value_optim.step()
        stats.setdefault("cost_value_loss", []).append(float(loss.detach()))

    def _finished_episode_costs(self, cost: np.ndarray, done: np.ndarray) -> list[float]:
        """Total cost of every episode that ended in this rollout ([T, N] arrays), including the
        part of it collected in earlier rollouts; unfinished episodes carry over."""
        if self._episode_cost is None or self._episode_cost.shape != cost.shape[1:]:
            self._episode_cost = np.zeros(cost.shape[1:])
        finished: list[float] = []
        for t in range(len(cost)):
            self._episode_cost += cost[t]
            finished.extend(self._episode_cost[done[t]].tolist())
            self._episode_cost[done[t]] = 0.0
        return finished


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit std over the rollout (a constant advantage becomes 0)."""
    return (x - x.mean()) / (x.std() + 1e-8) if len(x) > 1 else x - x.mean()


def _fresh_copy(module: nn.Module, seed: int) -> nn.Module:
    """A copy of `module` with every layer's parameters re-initialised under a local seed."""
    fresh = copy.deepcopy(module)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in fresh.modules():
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
    return fresh
