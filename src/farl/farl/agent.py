"""The agent of the robot loop: task policy plus, when fine-tuning, the PPO learner, for one stream.

Per control tick (DESIGN.md, "The runtime"): `propose` the task action for observation k; the
shield answers with the executed action, which `commit` keeps with its log-probability (per the
shield's `update_with`); when observation k+1 arrives, `outcome` completes transition k with the
reward and cost of the new state.  A tick whose observation is unusable loses the pending step
(`lose_step`): it is not learned from, and the stored trajectory is cut so GAE never chains across
the gap.  Between episodes, `end_episode` runs a PPO update once `rollout_steps` transitions are
stored, while a human resets the scene.

Deploy mode (no learner) acts with the policy's mean action and learns nothing.

`state` / `load_state` cover everything the next action and update depend on (weights, Adam
moments, schedules, generators, stored transitions), so a session resumed from the checkpoint
written after an episode continues exactly as the uninterrupted one would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from farl.online import OnlineFinetuner
from farl_policy.gaussian import GaussianPolicy


@dataclass(frozen=True)
class Proposal:
    """The /farl/action/proposed content: the task action for one observation."""

    action: np.ndarray          # (act_dim,) in the task's action box units (policy output, unclipped)
    log_prob: float
    policy_version: int         # PPO updates applied to the policy so far


class Agent:
    """One robot's task policy; `learner` is None in deploy mode."""

    def __init__(self, policy: GaussianPolicy, learner: OnlineFinetuner | None = None) -> None:
        if learner is not None and learner.policy is not policy:
            raise ValueError("the learner must fine-tune the agent's own policy")
        self.policy = policy
        self.learner = learner
        self._pending = False

    @property
    def learning(self) -> bool:
        return self.learner is not None

    @property
    def updates(self) -> int:
        return self.learner.ppo.updates if self.learner is not None else 0

    @property
    def pending(self) -> bool:
        """A committed step waits for its outcome."""
        return self._pending

    def propose(self, observation: np.ndarray) -> Proposal:
        """The task action for one observation (SpecError on NaN/inf)."""
        if self.learner is None:
            action, log_prob = self.policy.act(observation, deterministic=True)
        else:
            action, log_prob = self.learner.propose(observation[None])
            action, log_prob = action[0], log_prob[0]
        return Proposal(np.asarray(action, dtype=np.float32), float(log_prob), self.updates)

    def commit(self, observation: np.ndarray, proposal: Proposal, executed: np.ndarray) -> None:
        """The executed action of this tick has been sent to the bridge."""
        if self.learner is not None:
            self.learner.record(observation[None], proposal.action[None], np.array([proposal.log_prob]),
                                np.asarray(executed, dtype=np.float32)[None])
        self._pending = True  # deploy mode too: the episode's return and length count every completed step

    def outcome(self, reward: float, cost: float, next_observation: np.ndarray, terminated: bool,
                truncated: bool) -> None:
        """Complete the pending step with the state it led to (its reward and cost)."""
        if self.learner is not None and self._pending:
            self.learner.observe(np.array([reward], np.float32), next_observation[None], np.array([terminated]),
                                 np.array([truncated]), np.array([cost], np.float32))
        self._pending = False

    def lose_step(self) -> None:
        """The pending step's outcome is unknown (unusable tick, aborted episode): drop it, cut the trajectory."""
        if self.learner is not None:
            self.learner.discard()
        self._pending = False

    def end_episode(self) -> dict[str, float] | None:
        """Between episodes: a PPO update when enough transitions are stored (its statistics), else None."""
        if self._pending:
            self.lose_step()
        if self.learner is None or not self.learner.ready():
            return None
        return self.learner.update()

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if self.learner is None:
            return {}, {}
        return self.learner.state()

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        if self.learner is not None:
            self.learner.load_state(tensors, meta)
