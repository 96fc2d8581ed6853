"""Online PPO with GAE: the online phase of Uni-O4 and FARL (paper III.A, after Eq. 3).

The policy update is the same clipped objective as the offline phase (Eq. 3, imported from
`uni_o4`), with advantages from GAE on fresh on-policy data.  The critic starts from the
offline V.  Data arrives either from a (vectorised) gymnasium env or one transition at a time
from an external 5 Hz loop with human resets (the real robot); `RolloutBuffer` accepts both,
as arrays over N parallel streams (N = 1 on hardware).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from farl_core.config import param
from farl_policy.gaussian import GaussianPolicy
from farl_policy.training_state import (
    Tensors,
    generator_state,
    load_generator_state,
    load_optimizer_state,
    load_scheduler_state,
    optimizer_state,
    scheduler_state,
)
from farl_policy.uni_o4 import clipped_objective


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyper-parameters; defaults from Schulman et al. 2017 / the Uni-O4 online phase."""

    gamma: float = param(0.99, gt=0.0, le=1.0)
    gae_lambda: float = param(0.95, ge=0.0, le=1.0)
    clip_eps: float = param(0.2, gt=0.0, lt=1.0)           # PPO paper
    value_clip: float = param(0.2, ge=0.0)                 # 0 disables value clipping
    value_coef: float = param(0.5, ge=0.0)
    entropy_coef: float = param(0.0, ge=0.0)               # Uni-O4 online: no entropy bonus by default
    lr: float = param(3e-5, gt=0.0)                        # fine-tuning: 10x below from-scratch 3e-4
    value_lr: float = param(3e-4, gt=0.0)
    lr_decay: bool = True                                  # linear to 0 over the run
    max_grad_norm: float = param(0.5, gt=0.0)
    epochs: int = param(10, ge=1)
    minibatch_size: int = param(64, ge=1)
    rollout_steps: int = param(1024, ge=1)                 # transitions per update, all streams
    # Exploration noise for online RL: if set, the policy's log-std is reset to this value before
    # fine-tuning starts. Offline training leaves whatever noise it learned: too little to explore
    # after BC on near-deterministic demos (point mass), more than the task tolerates on FailureBench
    # (std 0.45 against the demos' 0.3; config/failurebench.yaml resets it to -1.2).
    exploration_log_std: float | None = None


class RolloutBuffer:
    """On-policy transitions of N parallel streams, stored step by step."""

    # learn: 1 where the policy gradient may use the step; 0 where another policy's action ran and the
    # step only trains the value function (FOSP's policy expansion, `update_with: own`).
    KEYS = ("obs", "act", "log_prob", "rew", "value", "next_value", "terminated", "done", "cost", "learn")

    def __init__(self) -> None:
        self.rows: dict[str, list[np.ndarray]] = {k: [] for k in self.KEYS}

    def __len__(self) -> int:
        return sum(len(v) for v in self.rows["rew"])

    def add(self, *, obs: np.ndarray, act: np.ndarray, log_prob: np.ndarray, rew: np.ndarray,
            value: np.ndarray, next_value: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
            cost: np.ndarray, learn: np.ndarray | None = None) -> None:
        """One step of every stream. `next_value` is V(s') of the true next state (the final
        observation on truncation), so time limits bootstrap and failures/successes do not.
        `learn` (default: every stream) marks the rows the policy gradient may use."""
        terminated = np.asarray(terminated, dtype=bool)
        done = terminated | np.asarray(truncated, dtype=bool)
        learn = np.ones(terminated.shape, dtype=bool) if learn is None else np.asarray(learn, dtype=bool)
        for key, value_ in (("obs", obs), ("act", act), ("log_prob", log_prob), ("rew", rew),
                            ("value", value), ("next_value", next_value), ("terminated", terminated),
                            ("done", done), ("cost", cost), ("learn", learn)):
            self.rows[key].append(np.asarray(value_))

    def batch(self, gamma: float, lam: float) -> dict[str, torch.Tensor]:
        """Flatten to tensors with GAE advantages and value targets."""
        arrays = {k: np.stack(v) for k, v in self.rows.items()}  # [T, N, ...]
        adv, ret = gae(arrays["rew"], arrays["value"], arrays["next_value"], arrays["terminated"],
                       arrays["done"], gamma, lam)
        flat = {k: torch.as_tensor(v.reshape(-1, *v.shape[2:]), dtype=torch.float32)
                for k, v in arrays.items() if k in ("obs", "act", "log_prob", "value", "learn")}
        flat["advantage"] = torch.as_tensor(adv.reshape(-1), dtype=torch.float32)
        flat["return"] = torch.as_tensor(ret.reshape(-1), dtype=torch.float32)
        return flat

    def clear(self) -> None:
        for rows in self.rows.values():
            rows.clear()

    def cut(self) -> None:
        """End every stream's trajectory at the last stored step (a gap follows: the next row is no successor).

        The step keeps its own V(s'), so GAE bootstraps it like a time limit; used when the robot
        loop loses a step (stale perception) in the middle of an episode.
        """
        if self.rows["done"]:
            self.rows["done"][-1] = np.ones_like(self.rows["done"][-1], dtype=bool)

    def state(self) -> Tensors:
        """The stored rows as [T, N, ...] tensors (empty buffer: no tensors), for a session checkpoint."""
        return {f"buffer.{k}": torch.as_tensor(np.stack(v)) for k, v in self.rows.items() if v}

    def load_state(self, tensors: Tensors) -> None:
        self.clear()
        for key in self.KEYS:
            if f"buffer.{key}" in tensors:
                self.rows[key] = list(tensors[f"buffer.{key}"].numpy())
        if self.rows["rew"] and not self.rows["learn"]:  # a checkpoint from before the learn mask
            self.rows["learn"] = [np.ones(r.shape, dtype=bool) for r in self.rows["rew"]]


def gae(rew: np.ndarray, value: np.ndarray, next_value: np.ndarray, terminated: np.ndarray,
        done: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over [T, N] arrays (Schulman et al. 2016).

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t); the recursion
    A_t = delta_t + gamma * lambda * A_{t+1} is cut at every episode end.  The last step of an
    unfinished stream bootstraps through next_value like any other step.
    """
    delta = rew + gamma * next_value * (1.0 - terminated) - value
    adv = np.zeros_like(delta, dtype=np.float64)
    running = np.zeros(delta.shape[1:], dtype=np.float64)
    for t in reversed(range(len(delta))):
        running = delta[t] + gamma * lam * (1.0 - done[t]) * running
        adv[t] = running
    return adv.astype(np.float32), (adv + value).astype(np.float32)


class PPO:
    """Clipped policy update (Eq. 3 with GAE advantages) plus a clipped value regression."""

    def __init__(self, policy: GaussianPolicy, value: nn.Module, config: PPOConfig, total_updates: int,
                 seed: int = 0) -> None:
        self.policy = policy
        self.value = value
        self.config = config
        if config.exploration_log_std is not None:
            with torch.no_grad():
                policy.log_std.fill_(config.exploration_log_std)
        self.generator = torch.Generator().manual_seed(seed)
        self.policy_optim = torch.optim.Adam(policy.parameters(), lr=config.lr)
        self.value_optim = torch.optim.Adam(value.parameters(), lr=config.value_lr)
        decay = (lambda i: max(0.0, 1.0 - i / max(total_updates, 1))) if config.lr_decay else (lambda i: 1.0)
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, decay)
                           for o in (self.policy_optim, self.value_optim)]
        self.updates = 0

    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        """Several epochs of minibatch updates on the buffer; returns mean losses."""
        cfg = self.config
        data = buffer.batch(cfg.gamma, cfg.gae_lambda)
        n = len(data["advantage"])
        stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "entropy": [], "clip_frac": [],
                                         "approx_kl": []}
        for _ in range(cfg.epochs):
            order = torch.randperm(n, generator=self.generator)
            for start in range(0, n, cfg.minibatch_size):
                idx = order[start:start + cfg.minibatch_size]
                self._minibatch_step({k: v[idx] for k, v in data.items()}, stats)
        for scheduler in self.schedulers:
            scheduler.step()
        self.updates += 1
        return {k: float(np.mean(v)) if v else math.nan for k, v in stats.items()}

    def state(self) -> tuple[Tensors, dict[str, Any]]:
        """Optimisers, schedules, minibatch generator and update count: what the next update depends on."""
        tensors, meta = {"ppo.generator": generator_state(self.generator)}, {"updates": self.updates}
        for name, optimizer, scheduler in zip(("policy_optim", "value_optim"), (self.policy_optim, self.value_optim),
                                              self.schedulers, strict=True):
            opt_tensors, opt_meta = optimizer_state(optimizer, f"ppo.{name}")
            tensors |= opt_tensors
            meta[name] = {**opt_meta, "schedule": scheduler_state(scheduler)}
        return tensors, meta

    def load_state(self, tensors: Tensors, meta: dict[str, Any]) -> None:
        """Inverse of `state` (the policy and value weights are restored by their owner)."""
        load_generator_state(self.generator, tensors["ppo.generator"])
        for name, optimizer, scheduler in zip(("policy_optim", "value_optim"), (self.policy_optim, self.value_optim),
                                              self.schedulers, strict=True):
            load_optimizer_state(optimizer, f"ppo.{name}", tensors, meta[name])
            load_scheduler_state(scheduler, meta[name]["schedule"])
        self.updates = int(meta["updates"])

    def _minibatch_step(self, mb: dict[str, torch.Tensor], stats: dict[str, list[float]]) -> None:
        cfg = self.config
        rows = _policy_rows(mb)
        if rows is not None:
            self._policy_step(rows, stats)

        value = self.value(mb["obs"])
        value_loss = (value - mb["return"]).pow(2)
        if cfg.value_clip > 0:
            clipped = mb["value"] + (value - mb["value"]).clamp(-cfg.value_clip, cfg.value_clip)
            value_loss = torch.max(value_loss, (clipped - mb["return"]).pow(2))
        value_loss = cfg.value_coef * value_loss.mean()
        self.value_optim.zero_grad()
        value_loss.backward()
        nn.utils.clip_grad_norm_(self.value.parameters(), cfg.max_grad_norm)
        self.value_optim.step()

        stats["value_loss"].append(float(value_loss.detach()))

    def _policy_step(self, mb: dict[str, torch.Tensor], stats: dict[str, list[float]]) -> None:
        """The clipped policy update on the rows the policy gradient may use."""
        cfg = self.config
        adv = mb["advantage"]
        if len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        dist = self.policy(mb["obs"])
        log_prob = dist.log_prob(mb["act"]).sum(-1)
        entropy = dist.entropy().sum(-1).mean()
        policy_loss = -clipped_objective(log_prob, mb["log_prob"], adv, cfg.clip_eps) - cfg.entropy_coef * entropy
        self.policy_optim.zero_grad()
        policy_loss.backward()
        nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
        self.policy_optim.step()
        with torch.no_grad():
            log_ratio = log_prob - mb["log_prob"]
            stats["approx_kl"].append(float(((log_ratio.exp() - 1) - log_ratio).mean()))
            stats["clip_frac"].append(float(((log_ratio.exp() - 1).abs() > cfg.clip_eps).float().mean()))
        stats["policy_loss"].append(float(policy_loss.detach()))
        stats["entropy"].append(float(entropy.detach()))


def _policy_rows(mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """The minibatch rows marked `learn` (all of it when every row is; None when fewer than 2 are)."""
    learn = mb.get("learn")
    if learn is None or bool(learn.all()):
        return mb
    keep = learn > 0.5
    if int(keep.sum()) < 2:
        return None
    return {key: mb[key][keep] for key in ("obs", "act", "log_prob", "advantage")}
