"""FrankaSim/<Task>-v0: a gymnasium env over the real bridge and a franky-sim task scene.

Nothing here talks to MuJoCo about the robot: actions go through FrankaBridge (hard limits,
watchdog, franky client on loopback) and the observation is built by the farl_core task spec
from the bridge's robot state and the scene's object states, the way the hardware runner builds
it from the bridge and perception.  A policy trained here therefore sees the interface the real
Panda gives it.  Time is robot time: one step is one control period (1 / control_rate_hz) of the
simulated robot's clock, however fast franky-sim runs on this CPU.  A step is never shorter
than that; on a starved CPU the simulation can run on while this thread waits to be scheduled, so
`info["dt"]` reports the robot time the step really took (as a real robot's loop would see it).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from farl_control.bridge import FrankaBridge
from farl_control.config import BridgeConfig
from farl_sim.franka_scenes.camera import SimulatedD435
from farl_sim.franka_scenes.scenes import make_franka_scene

DEFAULT_MAX_EPISODE_STEPS = 100
"""20 s at the paper's 5 Hz: the length of one real-robot episode."""


class FrankaSimEnv(gym.Env[np.ndarray, np.ndarray]):
    """Action (dx, dy, dz, gripper) in [-1, 1]: translation scaled by the bridge's max_translation."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: str, bridge: BridgeConfig | None = None, realtime: bool | float = False,
                 max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, render_mode: str | None = None) -> None:
        self.scene = make_franka_scene(task)
        self.task = self.scene.task
        self.bridge = FrankaBridge.connect(replace(bridge or BridgeConfig(), robot="sim"), scene=self.scene.build,
                                           realtime=realtime)
        assert self.bridge.server is not None
        self.sim = self.bridge.server
        spec = self.task.spec
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(spec.obs_dim,), dtype=np.float32)
        self.action_space = gym.spaces.Box(np.asarray(spec.action_low, dtype=np.float32),
                                           np.asarray(spec.action_high, dtype=np.float32))
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self._camera: SimulatedD435 | None = None
        self._steps = 0
        self._episode_start = 0.0

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.bridge.reset(self.np_random)
        self.scene.reset(self.sim, self.np_random)
        self._steps = 0
        self._episode_start = self.bridge.robot_time()
        obs, info = self._observe()
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=float)
        start = self.bridge.robot_time()
        command = self.bridge.command(action[:3] * self.bridge.config.limits.max_translation, gripper=action[3])
        self._wait_until(start + 1.0 / self.bridge.config.control_rate_hz)
        now = self.bridge.robot_time()
        self.scene.disturb(self.sim, now - self._episode_start, self.np_random)
        self._steps += 1
        obs, info = self._observe()
        info |= {"clipped": command.clipped, "rejected": command.rejected, "reason": command.reason,
                 "dt": now - start}
        terminated = bool(info["ir_failure"])  # a human would have to intervene
        truncated = not terminated and self._steps >= self.max_episode_steps
        return obs, info["reward"], terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self.scene.camera is None:
            return None
        if self._camera is None:
            self._camera = SimulatedD435(self.sim, self.scene.camera)
        return self._camera.capture().rgb

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        self.bridge.close()

    def _observe(self) -> tuple[np.ndarray, dict[str, Any]]:
        state = self.bridge.state()
        objects = self.scene.object_states(self.sim)
        goal = self.scene.goal
        obs = self.task.observation(state.ee_position, state.gripper_width, objects, goal)
        cost = self.task.cost(objects, state.ee_position)
        info = {"cost": cost, "ir_failure": cost > 0.0, "success": self.task.success(objects, goal),
                "reward": self.task.reward(objects, state.ee_position, goal), "objects": objects,
                "bridge_status": state.status.value}
        return obs, info

    def _wait_until(self, robot_time: float) -> None:
        while self.bridge.robot_time() < robot_time:
            time.sleep(0.002)
