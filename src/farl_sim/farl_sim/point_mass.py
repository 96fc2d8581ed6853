"""BoundedPointMass: a 2-D point mass in a corridor, the smallest task with an IR failure.

Why it exists: every learning component (BC, Uni-O4, PPO, world model, shield) must be shown to
*solve* something, quickly, on a CPU.  The point mass has momentum, so a failure is decided a
few steps before it happens, which is exactly what an H-step safety critic must foresee.

Geometry (metres, seconds; dt = 0.1 s):
  state  (x, y, vx, vy); start x ~ U(-0.9, -0.7), y ~ U(-0.10, 0.10), v = 0
  action (ax, ay) in [-1, 1]^2;  v' = 0.85 v + 0.15 a;  p' = p + dt * v' * 1.0
  corridor |y| <= 0.22, -1 <= x <= 1: leaving it is an IR failure (cost 1, episode ends)
  goal (0.8, 0.0): within 0.08 m is success (episode ends)
  reward: 10 x progress towards the goal per step, +5 on success, 0 on failure; 60-step limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_sim.recording import record_episodes

SPEC = TaskSpec(name="BoundedPointMass", observation_names=("x", "y", "vx", "vy"),
                action_names=("ax", "ay"), action_low=(-1.0, -1.0), action_high=(1.0, 1.0))


@dataclass(frozen=True)
class PointMassGeometry:
    dt: float = 0.1
    damping: float = 0.85
    half_width: float = 0.22
    x_limit: float = 1.0
    goal: tuple[float, float] = (0.8, 0.0)
    goal_radius: float = 0.08
    max_steps: int = 60


class BoundedPointMassEnv(gym.Env):
    """Gymnasium env; `info` carries cost, ir_failure and success on every step."""

    metadata = {"render_modes": []}

    def __init__(self, geometry: PointMassGeometry = PointMassGeometry()) -> None:
        self.geometry = geometry
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.state = np.zeros(4)
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        start = options.get("state")
        if start is not None:
            self.state = np.asarray(start, dtype=float).copy()
        elif options.get("near_failure"):  # where recovery demos start (same option as FailureBench)
            self.state = near_failure_states(self.np_random, 1, self.geometry)[0]
        else:
            self.state = np.array([self.np_random.uniform(-0.9, -0.7), self.np_random.uniform(-0.10, 0.10), 0.0, 0.0])
        self.steps = 0
        return self.state.astype(np.float32), {}

    def step(self, action):
        g = self.geometry
        a = np.clip(SPEC.check_action(action), -1.0, 1.0).astype(float)
        before = self._goal_distance()
        vel = g.damping * self.state[2:] + (1.0 - g.damping) * a
        pos = self.state[:2] + g.dt * vel
        self.state = np.concatenate([pos, vel])
        self.steps += 1
        failure = bool(abs(pos[1]) > g.half_width or abs(pos[0]) > g.x_limit)
        success = bool(not failure and self._goal_distance() <= g.goal_radius)
        reward = 0.0 if failure else 10.0 * (before - self._goal_distance()) + (5.0 if success else 0.0)
        terminated = failure or success
        truncated = bool(not terminated and self.steps >= g.max_steps)
        info = {"cost": float(failure), "ir_failure": failure, "success": success}
        return self.state.astype(np.float32), float(reward), terminated, truncated, info

    def _goal_distance(self) -> float:
        return float(np.linalg.norm(self.state[:2] - np.asarray(self.geometry.goal)))


def expert_action(obs: np.ndarray, geometry: PointMassGeometry = PointMassGeometry()) -> np.ndarray:
    """PD controller to the goal: the demonstrator that defines normalised return 100."""
    obs = np.asarray(obs, dtype=float)
    error = np.asarray(geometry.goal) - obs[..., :2]
    return np.clip(2.0 * error - 1.0 * obs[..., 2:], -1.0, 1.0).astype(np.float32)


def failure_action(obs: np.ndarray) -> np.ndarray:
    """Guided failure (failure demos): keep heading for the goal while drifting out of the corridor's nearer side."""
    obs = np.asarray(obs, dtype=float)
    ay = np.where(obs[..., 1] >= 0.0, 1.0, -1.0)
    return np.stack([np.ones_like(ay), ay], axis=-1).astype(np.float32)


def recovery_action(obs: np.ndarray) -> np.ndarray:
    """Scripted recovery: brake lateral motion and steer back to the corridor centre line."""
    obs = np.asarray(obs, dtype=float)
    ay = np.clip(-4.0 * obs[..., 1] - 2.0 * obs[..., 3], -1.0, 1.0)
    ax = np.clip(-1.0 * obs[..., 2], -1.0, 1.0)
    return np.stack([ax, ay], axis=-1).astype(np.float32)


def near_failure_states(rng: np.random.Generator, count: int,
                        geometry: PointMassGeometry = PointMassGeometry()) -> list[np.ndarray]:
    """States close to a corridor wall moving towards it: where recovery demos start."""
    states = []
    for _ in range(count):
        side = rng.choice([-1.0, 1.0])
        y = side * rng.uniform(0.08, geometry.half_width - 0.03)
        vy = side * rng.uniform(0.1, 0.6)
        states.append(np.array([rng.uniform(-0.9, 0.6), y, rng.uniform(-0.2, 0.6), vy]))
    return states


def demonstrations(kind: str, count: int, seed: int) -> Transitions:
    """Task, recovery or failure demos for the point mass, in the paper's three roles.

    task: noisy expert (medium-expert quality); recovery: scripted recovery from near-failure
    states (short episodes); failure: expert with large exploration noise, mostly failing.
    """
    rng = np.random.default_rng(seed)
    env = BoundedPointMassEnv()
    if kind == "task":
        return record_episodes(env, expert_action, count, rng, SPEC, noise=0.3)
    if kind == "recovery":
        return record_episodes(env, recovery_action, count, rng, SPEC, noise=0.1,
                               options=lambda k: {"near_failure": True}, max_steps=15)
    if kind == "failure":
        return record_episodes(env, expert_action, count, rng, SPEC, noise=2.0)
    raise ValueError(f"unknown demonstration kind '{kind}' (expected task, recovery or failure)")


gym.register(id="FARL/BoundedPointMass-v0", entry_point="farl_sim.point_mass:BoundedPointMassEnv")
