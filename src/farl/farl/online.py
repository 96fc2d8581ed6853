"""Online fine-tuning: task policy -> shield -> environment, PPO updates, failures counted.

`OnlineFinetuner` is the step-wise core shared by every driver: the synchronous gymnasium loop
below (simulation, benchmarks, tests) and the 5 Hz robot loop, which calls `act` and `observe`
once per control period and `update` while a human resets the scene.  It works on arrays over N
parallel streams (N = 1 on the robot).  The learner is PPO by default, or any already-built PPO
subclass, such as the PPO-Lagrangian baseline of the paper's Table I.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from farl_policy.gaussian import GaussianPolicy
from farl_policy.ppo import PPO, PPOConfig
from farl_policy.ppo_lagrangian import CostRolloutBuffer
from farl_policy.training_state import generator_state, load_generator_state, load_module_state, module_state
from farl_safety.failure_kinds import failure_kind, override_window
from farl_safety.shield import ActionFilter, Verdict


class OnlineFinetuner:
    """Samples task actions, lets the shield filter them, and learns from the outcome with PPO."""

    def __init__(self, policy: GaussianPolicy, value: nn.Module, config: PPOConfig, total_updates: int,
                 shield: ActionFilter | None = None, seed: int = 0, algorithm: PPO | None = None) -> None:
        """`algorithm`: an already-built learner for `policy` and `value` (e.g. PPOLagrangian);
        default a plain PPO built from `config`, `total_updates` and `seed`."""
        if algorithm is not None and (algorithm.policy is not policy or algorithm.value is not value
                                      or algorithm.config != config):
            raise ValueError("the algorithm given to OnlineFinetuner must update the same policy, value function "
                             "and PPO config the fine-tuner is given")
        self.policy = policy
        self.value = value
        self.shield = shield
        self.config = config
        self.ppo = PPO(policy, value, config, total_updates, seed=seed) if algorithm is None else algorithm
        # Keeps s' as well, which a cost critic (PPO-Lagrangian) evaluates; plain PPO ignores it.
        self.buffer = CostRolloutBuffer()
        self.generator = torch.Generator().manual_seed(seed)
        self._pending: dict[str, np.ndarray] | None = None

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, list[Verdict] | None]:
        """Executed actions for obs [N, obs_dim] (NaN/inf observations raise SpecError)."""
        proposed, proposed_log_prob = self.propose(obs)
        if self.shield is None:
            executed, verdicts = proposed, None
        else:
            executed, verdicts = self.shield.filter(obs, proposed)
        self.record(obs, proposed, proposed_log_prob, executed)
        return executed, verdicts

    def propose(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The task policy's sampled actions and their log-probabilities (the /farl/action/proposed content)."""
        return self.policy.act(obs, generator=self.generator)

    def record(self, obs: np.ndarray, proposed: np.ndarray, proposed_log_prob: np.ndarray,
               executed: np.ndarray) -> None:
        """Keep (obs, action, log-prob, V(obs)) of this step until `observe` brings its outcome.

        Which action is learned from follows the filter's `update_with` (shield.py): the executed
        one with its log-probability under the task policy (FARL's action correction), the
        proposed one (Recovery-RL's relabelling), or "own": the proposed one only where it was
        executed, the other steps training the value function alone (FOSP's policy expansion,
        where most replaced steps are another policy's deterministic action).  Without a shield
        all three are the same.
        """
        stored, log_prob, learn = proposed, proposed_log_prob, None
        if self.shield is not None and self.shield.update_with == "own":
            learn = np.all(np.asarray(executed) == np.asarray(proposed), axis=-1)
        if self.shield is not None and self.shield.update_with == "executed":
            stored = executed
            with torch.no_grad():
                log_prob = self.policy.log_prob(torch.as_tensor(obs, dtype=torch.float32),
                                                torch.as_tensor(executed, dtype=torch.float32)).numpy()
        with torch.no_grad():
            value = self.value(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        self._pending = {"obs": np.asarray(obs, dtype=np.float32), "act": np.asarray(stored, dtype=np.float32),
                         "log_prob": log_prob, "value": value, "learn": learn}

    def discard(self) -> None:
        """Forget the pending step (its outcome will never be known: the loop lost the next observation)
        and cut the stored trajectory there, so GAE does not chain across the gap."""
        self._pending = None
        self.buffer.cut()

    def observe(self, rew: np.ndarray, next_obs: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
                cost: np.ndarray) -> None:
        """Outcome of the last `act`; `next_obs` is the true next state (final obs at episode end)."""
        if self._pending is None:
            raise RuntimeError("observe() called without a preceding act()")
        next_obs = self.policy.spec.check_observation(next_obs)
        with torch.no_grad():
            next_value = self.value(torch.as_tensor(next_obs)).numpy()
        self.buffer.add(**self._pending, rew=np.asarray(rew, dtype=np.float32), next_value=next_value,
                        terminated=terminated, truncated=truncated, cost=np.asarray(cost, dtype=np.float32),
                        next_obs=next_obs)
        self._pending = None

    def ready(self) -> bool:
        return len(self.buffer) >= self.config.rollout_steps

    def update(self) -> dict[str, float]:
        stats = self.ppo.update(self.buffer)
        self.buffer.clear()
        return stats

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything the next action and the next update depend on: weights, optimisers, generators, buffer.

        Taken between episodes (no pending step); `load_state` on a fine-tuner built from the same
        configuration continues exactly where this one stopped.
        """
        if self._pending is not None:
            raise RuntimeError("state() taken mid-step: call it between episodes")
        if type(self.ppo) is not PPO:
            raise NotImplementedError(f"{type(self.ppo).__name__} has state beyond PPO's; it cannot be resumed yet")
        tensors, meta = self.ppo.state()
        tensors |= module_state(self.policy, "policy") | module_state(self.value, "value") | self.buffer.state()
        tensors["act.generator"] = generator_state(self.generator)
        return tensors, {"ppo": meta}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        load_module_state(self.policy, "policy", tensors)
        load_module_state(self.value, "value", tensors)
        self.ppo.load_state(tensors, meta["ppo"])
        self.buffer.load_state(tensors)
        load_generator_state(self.generator, tensors["act.generator"])
        self._pending = None


@dataclass
class EpisodeRecord:
    """One finished episode, as written to episodes.csv."""

    episode: int
    env_steps: int      # total env steps when it ended
    ret: float
    length: int
    ir_failure: bool
    success: bool
    overrides: int      # steps on which the shield executed the recovery action
    # an IR failure's kind by who acted in the steps before it (farl_safety.failure_kinds); "" otherwise
    failure_kind: str = ""


@dataclass
class OnlineResult:
    episodes: list[EpisodeRecord] = field(default_factory=list)
    updates: list[dict[str, float]] = field(default_factory=list)

    @property
    def failure_episodes(self) -> int:
        return sum(e.ir_failure for e in self.episodes)

    def mean_return(self, last: int | None = None) -> float:
        chosen = self.episodes[-last:] if last else self.episodes
        return float(np.mean([e.ret for e in chosen])) if chosen else math.nan


def run_online(make_env: Callable[[], gym.Env], finetuner: OnlineFinetuner, total_steps: int, num_envs: int = 1,
               seed: int = 0, log_dir: Path | None = None, progress: bool = False) -> OnlineResult:
    """Fine-tune for `total_steps` env steps over `num_envs` synchronously stepped envs.

    Episodes end on termination (success or IR failure: `info["ir_failure"]`) or truncation; each
    is logged to `log_dir/episodes.csv` and TensorBoard when `log_dir` is given.
    """
    envs = [make_env() for _ in range(num_envs)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    ret, length, overrides = np.zeros(num_envs), np.zeros(num_envs, int), np.zeros(num_envs, int)
    recent = [override_window() for _ in range(num_envs)]
    result = OnlineResult()
    logger = _EpisodeLogger(log_dir) if log_dir else None
    bar = tqdm(total=total_steps, desc="fine-tune", unit="step", disable=not progress)
    steps = 0
    while steps < total_steps:
        action, verdicts = finetuner.act(obs)
        overridden = [v.overridden for v in verdicts] if verdicts else [False] * num_envs
        overrides += overridden
        for window, flag in zip(recent, overridden, strict=True):
            window.append(flag)
        outcomes = [env.step(a) for env, a in zip(envs, action, strict=True)]
        next_obs = np.stack([o[0] for o in outcomes])
        rew = np.array([o[1] for o in outcomes], dtype=np.float32)
        term = np.array([o[2] for o in outcomes])
        trunc = np.array([o[3] for o in outcomes])
        infos = [o[4] for o in outcomes]
        finetuner.observe(rew, next_obs, term, trunc, np.array([i.get("cost", 0.0) for i in infos]))
        ret += rew
        length += 1
        steps += num_envs
        for i in np.flatnonzero(term | trunc):
            failed = bool(infos[i].get("ir_failure", False))
            record = EpisodeRecord(len(result.episodes), steps, float(ret[i]), int(length[i]), failed,
                                   bool(infos[i].get("success", False)), int(overrides[i]),
                                   failure_kind(recent[i]) if failed else "")
            result.episodes.append(record)
            if logger:
                logger.episode(record)
            ret[i], length[i], overrides[i] = 0.0, 0, 0
            recent[i].clear()
            next_obs[i] = envs[i].reset()[0]
        obs = next_obs
        if finetuner.ready():
            stats = finetuner.update()
            result.updates.append(stats)
            if logger:
                logger.update(stats, steps)
        bar.update(num_envs)
        bar.set_postfix(failures=result.failure_episodes, ret=f"{result.mean_return(20):.1f}")
    bar.close()
    if logger:
        logger.close()
    return result


class _EpisodeLogger:
    """episodes.csv (one row per episode, flushed as it goes) plus TensorBoard scalars."""

    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        log_dir.mkdir(parents=True, exist_ok=True)
        self.file = open(log_dir / "episodes.csv", "w", newline="")  # noqa: SIM115 - closed in close()
        self.csv = csv.DictWriter(self.file, fieldnames=[f for f in EpisodeRecord.__dataclass_fields__])
        self.csv.writeheader()
        self.tb = SummaryWriter(str(log_dir / "tensorboard"))
        self.failures = 0

    def episode(self, record: EpisodeRecord) -> None:
        self.csv.writerow(asdict(record))
        self.file.flush()
        self.failures += record.ir_failure
        self.tb.add_scalar("episode/return", record.ret, record.env_steps)
        self.tb.add_scalar("episode/failure_episodes", self.failures, record.env_steps)
        self.tb.add_scalar("episode/overrides", record.overrides, record.env_steps)

    def update(self, stats: dict[str, float], steps: int) -> None:
        for key, value in stats.items():
            self.tb.add_scalar(f"ppo/{key}", value, steps)

    def close(self) -> None:
        self.file.close()
        self.tb.close()
